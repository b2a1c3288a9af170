package imports

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/products"
)

// Row problem codes (documented in openapi.yaml, ImportProblem, and
// docs/import.md).
const (
	CodeUnknownColumn    = "unknown_column"    // a header that maps to no field (row 1; the column is ignored)
	CodeRequired         = "required"          // a required field is empty
	CodeTooLong          = "too_long"          // longer than the field takes
	CodeInvalidPhone     = "invalid_phone"     // not a phone number
	CodeInvalidEmail     = "invalid_email"     // not an email address
	CodeInvalidValue     = "invalid_value"     // not one of the field's values (grade, active) or not of its form (sku)
	CodeInvalidAmount    = "invalid_amount"    // not a decimal amount with at most two decimals, or negative (listPrice, internalCost)
	CodeControlCharacter = "control_character" // control characters other than tab and newline
	CodeMissingKey       = "missing_key"       // a lead with none of company, phone and email: a re-run could not recognise it
	CodeDuplicateInFile  = "duplicate_in_file" // the same company/name, phone or email (a product: sku) as an earlier row of the file
	CodeDuplicate        = "duplicate"         // the same company/name, phone or email (a product: sku) as a record in Shoal
	CodeOverCap          = "over_cap"          // created, but pooled: the importer is at his cap (as createLead)
	CodeRefused          = "refused"           // refused by another rule (the message says which)
)

// fieldSpec is one importable field of a kind: its name (the API's), the
// header labels that map to it automatically, and its rule.
type fieldSpec struct {
	name   string
	labels []string
	rule   rule
}

type rule struct {
	required bool
	max      int
	check    func(string) string // "" or a problem code
}

var (
	nameRule  = rule{required: true, max: 200}
	shortRule = rule{max: 200}
	longRule  = rule{max: 5000}
	phoneRule = rule{max: 40, check: func(v string) string {
		if !phonePattern.MatchString(v) {
			return CodeInvalidPhone
		}
		return ""
	}}
	emailRule = rule{max: 254, check: func(v string) string {
		if !emailPattern.MatchString(v) {
			return CodeInvalidEmail
		}
		return ""
	}}
	gradeRule = rule{max: 1, check: func(v string) string {
		if v != "A" && v != "B" && v != "C" {
			return CodeInvalidValue
		}
		return ""
	}}
	tagsRule = rule{max: 5000, check: func(v string) string {
		tags := splitTags(v)
		if len(tags) > 50 {
			return CodeTooLong
		}
		for _, t := range tags {
			if utf8.RuneCountInString(t) > 50 {
				return CodeTooLong
			}
		}
		return ""
	}}

	// A product's fields, by createProduct's rules (internal/products).
	skuRule = rule{required: true, max: products.MaxSKU, check: func(v string) string {
		if _, _, err := products.NormSKU(v); err != nil {
			return CodeInvalidValue
		}
		return ""
	}}
	productNameRule = rule{required: true, max: products.MaxName}
	listPriceRule   = amountRule("listPrice", true)
	costRule        = amountRule("internalCost", false)
	activeRule      = rule{max: 10, check: func(v string) string {
		if _, ok := parseActive(v); !ok {
			return CodeInvalidValue
		}
		return ""
	}}

	// The contract's Phone pattern and its loose Email format.
	phonePattern = regexp.MustCompile(`^[0-9０-９+()（）\-\s.#*xX转ext分机]*$`)
	emailPattern = regexp.MustCompile(`^[^@]+@[^@<>",\s]+$`)
)

var (
	labelsName     = []string{"name", "姓名", "名字", "联系人", "联系人姓名"}
	labelsCompany  = []string{"company", "公司", "公司名称", "单位", "单位名称", "企业", "企业名称"}
	labelsPhone    = []string{"phone", "mobile", "tel", "telephone", "手机", "手机号", "手机号码", "电话", "联系电话", "电话号码", "联系方式"}
	labelsEmail    = []string{"email", "e-mail", "mail", "邮箱", "电子邮箱", "电子邮件", "邮件", "邮箱地址"}
	labelsSource   = []string{"source", "来源", "线索来源", "客户来源", "渠道"}
	labelsRegion   = []string{"region", "地区", "区域", "所在地区", "省份", "城市"}
	labelsIndustry = []string{"industry", "行业", "所属行业"}
	labelsNotes    = []string{"notes", "note", "备注", "说明"}
	labelsTags     = []string{"tags", "tag", "标签"}
)

// amountRule is a product's money field: a decimal string with at most
// two decimals, not negative (products.ParseAmount). The problem names
// the field and the code only: an internal cost is never echoed.
func amountRule(field string, required bool) rule {
	return rule{required: required, max: 40, check: func(v string) string {
		if _, err := products.ParseAmount(field, v); err != nil {
			return CodeInvalidAmount
		}
		return ""
	}}
}

// parseActive reads a product's active cell: yes or no, in English or
// Chinese (启用/停用, 是/否, 1/0 …).
func parseActive(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "y", "1", "on", "是", "启用", "有效", "在售", "上架":
		return true, true
	case "false", "no", "n", "0", "off", "否", "停用", "禁用", "无效", "停售", "下架":
		return false, true
	}
	return false, false
}

// fieldsOf are the importable fields of each kind.
var fieldsOf = map[string][]fieldSpec{
	"lead": {
		{"name", labelsName, nameRule},
		{"company", labelsCompany, shortRule},
		{"phone", labelsPhone, phoneRule},
		{"email", labelsEmail, emailRule},
		{"source", labelsSource, shortRule},
		{"region", labelsRegion, shortRule},
		{"industry", labelsIndustry, shortRule},
		{"notes", labelsNotes, longRule},
		{"tags", labelsTags, tagsRule},
	},
	// A customer's row is the company and its first contact.
	"customer": {
		{"name", []string{"name", "customername", "客户", "客户名称", "公司", "公司名称", "单位", "单位名称", "企业", "企业名称"}, nameRule},
		{"industry", labelsIndustry, shortRule},
		{"region", labelsRegion, shortRule},
		{"address", []string{"address", "地址", "详细地址", "公司地址"}, shortRule},
		{"website", []string{"website", "网站", "网址", "官网"}, shortRule},
		{"grade", []string{"grade", "等级", "客户等级", "客户级别"}, gradeRule},
		{"creditLevel", []string{"creditlevel", "信用等级"}, shortRule},
		{"source", labelsSource, shortRule},
		{"tags", labelsTags, tagsRule},
		{"contactName", []string{"contactname", "联系人", "联系人姓名", "姓名"}, shortRule},
		{"contactTitle", []string{"contacttitle", "title", "职位", "职务"}, shortRule},
		{"contactPhone", append([]string{"contactphone"}, labelsPhone...), phoneRule},
		{"contactEmail", append([]string{"contactemail"}, labelsEmail...), emailRule},
	},
	// A product's row is createProduct's body (and active). Products
	// have no owner and no pool.
	"product": {
		{"sku", []string{"sku", "产品编号", "产品编码", "商品编号", "商品编码", "编号", "编码", "货号", "物料编码", "物料号"}, skuRule},
		{"name", []string{"name", "productname", "产品名称", "产品", "商品名称", "名称", "品名"}, productNameRule},
		{"category", []string{"category", "类别", "产品类别", "分类", "产品分类", "类目"}, rule{max: products.MaxCategory}},
		{"unit", []string{"unit", "单位", "计量单位"}, rule{max: products.MaxUnit}},
		{"specification", []string{"specification", "spec", "规格", "规格型号", "型号"}, rule{max: products.MaxSpecification}},
		{"listPrice", []string{"listprice", "price", "标准价", "售价", "单价", "价格", "标价", "销售价"}, listPriceRule},
		{"internalCost", []string{"internalcost", "cost", "成本价", "成本", "进价"}, costRule},
		{"active", []string{"active", "启用", "是否启用", "状态"}, activeRule},
	},
}

// requiredColumns are the fields a file of each kind must have a column
// for, else it is refused at once.
var requiredColumns = map[string][]string{
	"lead":     {"name"},
	"customer": {"name"},
	"product":  {"sku", "name", "listPrice"},
}

// Kinds lists the kinds an import takes.
func Kinds() []string { return []string{"lead", "customer", "product"} }

// Fields lists the importable field names of kind.
func Fields(kind string) []string {
	var out []string
	for _, f := range fieldsOf[kind] {
		out = append(out, f.name)
	}
	return out
}

// normLabel is a header as compared with labels: trimmed, without BOM,
// a required-marker (*, （必填）) or inner spaces, lower case.
func normLabel(h string) string {
	h = strings.TrimPrefix(h, "\ufeff")
	for _, suffix := range []string{"（必填）", "(必填)", "*", "＊"} {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(h, suffix)
		h = strings.TrimPrefix(h, suffix)
	}
	h = strings.Join(strings.Fields(h), "")
	h = strings.ReplaceAll(h, "_", "")
	return strings.ToLower(h)
}

// Columns is how a file's columns map to fields: Field[i] is the field of
// column i ("" when ignored).
type Columns struct {
	Field   []string
	Header  []string
	Unknown []int // columns that map to nothing and were not ignored on purpose
}

// errMapping is a mapping or header problem that refuses the whole file.
type errMapping struct{ field, code, msg string }

func (e errMapping) Error() string { return e.msg }

// MapColumns maps the header of a file of kind to fields: mapping (header
// → field; "" ignores the column) first, then the labels. A field taken by
// two columns, a mapping to no field, or a file without a name column is
// refused.
func MapColumns(kind string, header []string, mapping map[string]string) (*Columns, error) {
	specs, ok := fieldsOf[kind]
	if !ok {
		return nil, errMapping{"kind", "invalid", "unknown kind"}
	}
	byLabel := map[string]string{}
	// Earlier fields win a label two share (联系人: a lead's name).
	for i := len(specs) - 1; i >= 0; i-- {
		byLabel[normLabel(specs[i].name)] = specs[i].name
		for _, l := range specs[i].labels {
			byLabel[normLabel(l)] = specs[i].name
		}
	}
	known := map[string]bool{}
	for _, f := range specs {
		known[f.name] = true
	}
	byHeader := map[string]string{}
	for h, f := range mapping {
		if f != "" && !known[f] {
			return nil, errMapping{"mapping", "unknown_field", fmt.Sprintf("mapping: %q is not a field of a %s (fields: %s)", f, kind, strings.Join(Fields(kind), ", "))}
		}
		byHeader[normLabel(h)] = f
	}
	c := &Columns{Field: make([]string, len(header)), Header: header}
	taken := map[string]int{}
	for i, h := range header {
		n := normLabel(h)
		if n == "" {
			continue
		}
		f, mapped := byHeader[n]
		if !mapped {
			f = byLabel[n]
			if f == "" {
				c.Unknown = append(c.Unknown, i)
				continue
			}
		}
		if f == "" {
			continue
		}
		if j, dup := taken[f]; dup {
			// Two columns for one field: the first wins, unless the
			// client mapped them; a label clash (手机 and 电话) keeps the
			// first and reports the other as unknown.
			if mapped {
				return nil, errMapping{"mapping", "duplicate_field", fmt.Sprintf("columns %q and %q both map to %s", header[j], h, f)}
			}
			c.Unknown = append(c.Unknown, i)
			continue
		}
		taken[f] = i
		c.Field[i] = f
	}
	for _, f := range requiredColumns[kind] {
		if _, ok := taken[f]; !ok {
			return nil, errMapping{"file", "missing_column", fmt.Sprintf("no column maps to %s (%s): give a mapping", f, hint(kind, f))}
		}
	}
	return c, nil
}

// hint names the usual headers of field of kind, for a missing column.
func hint(kind, field string) string {
	if kind != "product" {
		return "姓名 / 客户名称"
	}
	return map[string]string{"sku": "SKU / 产品编号", "name": "产品名称", "listPrice": "标准价 / 售价"}[field]
}

// Row is one data row's values by field, and its row number in the file.
type Row struct {
	Num    int
	Values map[string]string
}

// column is the header of the column of field, for problems.
func (c *Columns) column(field string) string {
	for i, f := range c.Field {
		if f == field {
			return strings.TrimSpace(c.Header[i])
		}
	}
	return ""
}

// RowOf reads data row i (file row i+2) by field.
func (c *Columns) RowOf(i int, cells []string) Row {
	r := Row{Num: i + 2, Values: map[string]string{}}
	for j, f := range c.Field {
		if f == "" || j >= len(cells) {
			continue
		}
		if v := strings.TrimSpace(cells[j]); v != "" {
			r.Values[f] = v
		}
	}
	return r
}

// Check returns the field problems of a row of kind (none: it may be
// written).
func (c *Columns) Check(kind string, r Row) []schema.ImportProblem {
	var out []schema.ImportProblem
	add := func(field, code, msg string) {
		out = append(out, schema.ImportProblem{Row: r.Num, Column: c.column(field), Field: field, Code: code, Message: msg})
	}
	for _, f := range fieldsOf[kind] {
		v, ok := r.Values[f.name]
		switch {
		case !ok:
			if f.rule.required {
				add(f.name, CodeRequired, f.name+" is required")
			}
		case hasControl(v):
			add(f.name, CodeControlCharacter, "control characters other than tab and newline are not allowed")
		case utf8.RuneCountInString(v) > f.rule.max:
			add(f.name, CodeTooLong, fmt.Sprintf("%s is longer than %d characters", f.name, f.rule.max))
		case f.rule.check != nil:
			if code := f.rule.check(v); code != "" {
				add(f.name, code, fmt.Sprintf("%s is not valid: %s", f.name, code))
			}
		}
	}
	if kind == "lead" && len(out) == 0 && len(keysOf(kind, r)) == 0 {
		add("company", CodeMissingKey, "a lead needs a company, phone or email: without one a re-run of the file could not recognise it")
	}
	return out
}

func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return true
		}
	}
	return false
}

// splitTags splits a tags cell at commas (also Chinese ones), semicolons
// and 、.
func splitTags(v string) []string {
	parts := strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == '，' || r == ';' || r == '；' || r == '、' || r == '|'
	})
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// key is one duplicate key of a row, with the field it comes from.
type key struct {
	field string
	value string // type:normalised value
}

// keysOf are the duplicate keys a row of kind claims, normalised as
// createLead/createCustomer claim them (a lead's name key is its company;
// a customer's first contact claims its phone and email).
func keysOf(kind string, r Row) []key {
	var out []key
	add := func(field, typ string, norm func(string) string) {
		if v := norm(r.Values[field]); v != "" {
			out = append(out, key{field, typ + ":" + v})
		}
	}
	switch kind {
	case "product":
		add("sku", "sku", func(v string) string {
			if _, norm, err := products.NormSKU(v); err == nil {
				return norm
			}
			return ""
		})
	case "lead":
		add("company", dedupe.MatchedName, dedupe.Name)
		add("phone", dedupe.MatchedPhone, dedupe.Phone)
		add("email", dedupe.MatchedEmail, dedupe.Email)
	default:
		add("name", dedupe.MatchedName, dedupe.Name)
		add("contactPhone", dedupe.MatchedPhone, dedupe.Phone)
		add("contactEmail", dedupe.MatchedEmail, dedupe.Email)
	}
	return out
}

// fieldOfMatch is the field of a row of kind that a duplicate matched on.
func fieldOfMatch(kind, matchedOn string) string {
	switch {
	case matchedOn == dedupe.MatchedName && kind == "lead":
		return "company"
	case matchedOn == dedupe.MatchedName:
		return "name"
	case kind == "lead":
		return matchedOn
	case matchedOn == dedupe.MatchedPhone:
		return "contactPhone"
	default:
		return "contactEmail"
	}
}

// Prepare checks every row of t: field rules, then duplicates within the
// file (a row whose key an earlier good row holds). It returns, per data
// row, its problems (none: to be written).
func Prepare(kind string, c *Columns, t *Table) [][]schema.ImportProblem {
	out := make([][]schema.ImportProblem, len(t.Rows))
	seen := map[string]int{}
	for i, cells := range t.Rows {
		r := c.RowOf(i, cells)
		if len(r.Values) == 0 {
			continue // an empty row in the middle: nothing to import
		}
		if p := c.Check(kind, r); len(p) > 0 {
			out[i] = p
			continue
		}
		for _, k := range keysOf(kind, r) {
			if first, ok := seen[k.value]; ok {
				out[i] = append(out[i], schema.ImportProblem{Row: r.Num, Column: c.column(k.field), Field: k.field, Code: CodeDuplicateInFile,
					Message: fmt.Sprintf("the same %s as row %d", k.field, first)})
			}
		}
		if len(out[i]) == 0 {
			for _, k := range keysOf(kind, r) {
				seen[k.value] = r.Num
			}
		}
	}
	return out
}
