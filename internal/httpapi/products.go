package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/records"
)

// productOut is a product as p sees it: the cost and the margin only for
// those products.CostVisible admits, so no format built from it (JSON,
// CSV, XLSX) can show them to anyone else.
func productOut(pr *ent.Product, p *auth.Principal) api.Product {
	out := api.Product{Id: pr.ID, Sku: pr.Sku, Name: pr.Name, Category: pr.Category, Unit: pr.Unit,
		Specification: pr.Specification, ListPrice: pr.ListPrice.String(), Active: pr.Active,
		CreatedAt: pr.CreatedAt.UTC(), UpdatedAt: pr.UpdatedAt.UTC()}
	if products.CostVisible(p) && pr.InternalCost != nil {
		cost := pr.InternalCost.String()
		out.InternalCost = &cost
		if m, err := pr.ListPrice.Minus(*pr.InternalCost); err == nil {
			margin := m.String()
			out.Margin = &margin
		}
	}
	return out
}

// productColumns are listProducts' export columns for p: the cost and the
// margin only for those who see them.
func productColumns(p *auth.Principal) []export.Column[api.Product] {
	cols := []export.Column[api.Product]{
		col("id", "编号", func(v api.Product) string { return v.Id.String() }),
		col("sku", "产品编码", func(v api.Product) string { return v.Sku }),
		col("name", "产品名称", func(v api.Product) string { return v.Name }),
		col("category", "类别", func(v api.Product) string { return export.Text(v.Category) }),
		col("unit", "单位", func(v api.Product) string { return export.Text(v.Unit) }),
		col("specification", "规格", func(v api.Product) string { return export.Text(v.Specification) }),
		col("listPrice", "标准价格", func(v api.Product) string { return v.ListPrice }),
	}
	if products.CostVisible(p) {
		cols = append(cols,
			col("internalCost", "成本价", func(v api.Product) string { return export.Text(v.InternalCost) }),
			col("margin", "毛利", func(v api.Product) string { return export.Text(v.Margin) }))
	}
	return append(cols,
		col("active", "在售", func(v api.Product) string { return export.Bool(v.Active) }),
		col("createdAt", "创建时间", func(v api.Product) string { return export.Time(v.CreatedAt) }),
		col("updatedAt", "更新时间", func(v api.Product) string { return export.Time(v.UpdatedAt) }))
}

// CreateProduct adds a product to the catalogue.
func (s *Server) CreateProduct(ctx context.Context, req api.CreateProductRequestObject) (api.CreateProductResponseObject, error) {
	b := req.Body
	list, err := moneyIn("body/listPrice", b.ListPrice)
	if err != nil {
		return nil, err
	}
	in := products.Input{SKU: b.Sku, Name: b.Name, Category: b.Category, Unit: b.Unit, Specification: b.Specification, ListPrice: list}
	if b.InternalCost != nil {
		cost, err := moneyIn("body/internalCost", *b.InternalCost)
		if err != nil {
			return nil, err
		}
		in.InternalCost = &cost
	}
	p := auth.FromContext(ctx)
	pr, err := s.products.Create(ctx, p, in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "product", pr.ID.String())
	return api.CreateProduct201JSONResponse{Body: productOut(pr, p),
		Headers: api.CreateProduct201ResponseHeaders{ETag: etag.Ptr(pr.Version), Location: location("products", pr.ID)}}, nil
}

// GetProduct returns a product.
func (s *Server) GetProduct(ctx context.Context, req api.GetProductRequestObject) (api.GetProductResponseObject, error) {
	pr, err := s.products.Get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetProduct200JSONResponse{Body: productOut(pr, auth.FromContext(ctx)), Headers: api.GetProduct200ResponseHeaders{ETag: etag.Ptr(pr.Version)}}, nil
}

// ListProducts lists the catalogue, as JSON or as a CSV or XLSX file.
func (s *Server) ListProducts(ctx context.Context, req api.ListProductsRequestObject) (api.ListProductsResponseObject, error) {
	prm := req.Params
	p := auth.FromContext(ctx)
	sort := ""
	if prm.Sort != nil {
		sort = string(*prm.Sort)
	}
	f := products.Filter{Q: prm.Q, Category: prm.Category, Active: prm.Active}
	if w, ok := exportWanted(ctx); ok {
		body, cd, err := stream(ctx, s, w, exportOf[api.Product]{exportAudit: exportAudit{op: "listProducts", targetType: "product"},
			noun: "products", columns: productColumns(p), bom: prm.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.Product, *records.Cursor, error) {
				rows, next, err := s.products.List(ctx, sort, f, after, exportPageSize)
				return outAll(rows, func(pr *ent.Product) api.Product { return productOut(pr, p) }), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListProducts200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListProducts200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListProducts200TextcsvResponse{Body: body, Headers: h}, nil
	}
	cursor, err := s.cursorIn(ctx, prm.Cursor)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.products.List(ctx, sort, f, cursor, page.Size(prm.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ProductList{Items: make([]api.Product, len(rows))}
	for i, pr := range rows {
		out.Items[i] = productOut(pr, p)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListProducts200JSONResponse{Body: out}, nil
}

// UpdateProduct patches a product.
func (s *Server) UpdateProduct(ctx context.Context, req api.UpdateProductRequestObject) (api.UpdateProductResponseObject, error) {
	noteTarget(ctx, "product", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := products.Patch{SKU: b.Sku, Name: b.Name, Category: fieldOf(b.Category, same[string]), Unit: fieldOf(b.Unit, same[string]),
		Specification: fieldOf(b.Specification, same[string]), Active: b.Active}
	if b.ListPrice != nil {
		list, err := moneyIn("body/listPrice", *b.ListPrice)
		if err != nil {
			return nil, err
		}
		in.ListPrice = &list
	}
	if in.InternalCost, err = moneyField("body/internalCost", b.InternalCost); err != nil {
		return nil, err
	}
	p := auth.FromContext(ctx)
	pr, err := s.products.Update(ctx, p, req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateProduct200JSONResponse{Body: productOut(pr, p), Headers: api.UpdateProduct200ResponseHeaders{ETag: etag.Ptr(pr.Version)}}, nil
}
