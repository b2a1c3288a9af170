package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/imports"
	"github.com/shoalcrm/shoal/internal/page"
)

// importBodyLimit is createImport's request body limit (echo notation):
// the file's 20 MB and room for the form around it.
const importBodyLimit = "21M"

// isImportUpload reports whether c is a createImport request.
func isImportUpload(c echo.Context) bool {
	return c.Request().Method == http.MethodPost && c.Path() == "/v1/imports"
}

func importOut(b *ent.BulkImport) api.Import {
	c := b.Counts
	out := api.Import{Id: b.ID, Kind: api.ImportKind(b.Kind), Status: api.ImportStatus(b.Status), DryRun: b.DryRun,
		FileName: b.FileName, Format: api.ImportFormat(b.Format), PoolId: b.PoolID,
		Total: int32(b.Total), Processed: int32(b.Processed), ProblemCount: int32(b.ProblemCount),
		Counts: api.ImportCounts{Created: int32(c.Created), Owned: int32(c.Owned), Pooled: int32(c.Pooled),
			AutoAssigned: int32(c.AutoAssigned), OverCap: int32(c.OverCap), Invalid: int32(c.Invalid), Duplicates: int32(c.Duplicates)},
		Problems:  make([]api.ImportProblem, len(b.Problems)),
		CreatedAt: b.CreatedAt.UTC(), UpdatedAt: b.UpdatedAt.UTC()}
	if b.Encoding != "" {
		e := api.ImportEncoding(b.Encoding)
		out.Encoding = &e
	}
	for i, p := range b.Problems {
		out.Problems[i] = api.ImportProblem{Row: int32(p.Row), Code: api.ImportProblemCode(p.Code), Message: p.Message}
		if p.Column != "" {
			col := p.Column
			out.Problems[i].Column = &col
		}
		if p.Field != "" {
			f := p.Field
			out.Problems[i].Field = &f
		}
	}
	if b.Error != "" {
		e := b.Error
		out.Error = &e
	}
	if b.FinishedAt != nil {
		t := b.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	return out
}

// CreateImport reads the multipart form and queues the import.
func (s *Server) CreateImport(ctx context.Context, req api.CreateImportRequestObject) (api.CreateImportResponseObject, error) {
	in, err := importForm(req)
	if err != nil {
		return nil, err
	}
	b, err := s.imports.Create(ctx, auth.FromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "import", b.ID.String())
	return api.CreateImport202JSONResponse{Body: importOut(b), Headers: api.CreateImport202ResponseHeaders{Location: location("imports", b.ID)}}, nil
}

// importForm reads createImport's form fields (the contract check has
// validated them).
func importForm(req api.CreateImportRequestObject) (imports.Request, error) {
	var in imports.Request
	if req.Body == nil {
		return in, apperr.Invalidf("body/file", "required", "give the file to import")
	}
	for {
		part, err := req.Body.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return in, bodyReadError(err)
		}
		name := part.FormName()
		if name == "file" {
			in.FileName = part.FileName()
			in.File, err = io.ReadAll(io.LimitReader(part, imports.MaxFileSize+1))
			if err != nil {
				return in, bodyReadError(err)
			}
			if len(in.File) > imports.MaxFileSize {
				return in, apperr.New(apperr.TooLarge, "payload_too_large", "the file is larger than 20 MB")
			}
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(part, 64<<10))
		if err != nil {
			return in, bodyReadError(err)
		}
		v := strings.TrimSpace(string(raw))
		switch name {
		case "kind":
			in.Kind = v
		case "encoding":
			in.Encoding = v
		case "dryRun":
			if in.DryRun, err = strconv.ParseBool(v); err != nil {
				return in, apperr.Invalidf("body/dryRun", "invalid", "dryRun must be true or false")
			}
		case "mapping":
			if in.Mapping, err = imports.MappingOf(v); err != nil {
				return in, err
			}
		case "poolId":
			id, err := uuid.Parse(v)
			if err != nil {
				return in, apperr.Invalidf("body/poolId", "invalid", "poolId must be a UUID")
			}
			in.PoolID = &id
		}
	}
	return in, nil
}

// bodyReadError is a body that could not be read: over the body limit
// (413), or a malformed form (400).
func bodyReadError(err error) error {
	if e := toAppErr(err); e != nil && e.Kind == apperr.TooLarge {
		return e
	}
	return apperr.Invalidf("body", "malformed", "the body is not a readable multipart form")
}

// GetImport returns an import, its progress and its problems.
func (s *Server) GetImport(ctx context.Context, req api.GetImportRequestObject) (api.GetImportResponseObject, error) {
	b, err := s.imports.Get(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetImport200JSONResponse{Body: importOut(b)}, nil
}

// ListImports lists the imports the caller may see, newest first.
func (s *Server) ListImports(ctx context.Context, req api.ListImportsRequestObject) (api.ListImportsResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.imports.List(ctx, auth.FromContext(ctx), cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ImportList{Items: make([]api.Import, len(rows))}
	for i, b := range rows {
		out.Items[i] = importOut(b)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListImports200JSONResponse{Body: out}, nil
}
