package documents

import _ "embed"

// Party is a company or a person a document names: the issuing company
// (its letterhead), the customer, a contact, the sales rep.
type Party struct{ Name, Address, Phone, Email, TaxID string }

// QuoteLine is one line of a quote as its template sees it. Quantities,
// prices and rates are decimal strings ("3", "1234.50", "5", "13"),
// amounts money strings ("1234.50").
type QuoteLine struct {
	No                                            int
	SKU, Name, Specification, Unit                string
	Quantity, UnitPrice, DiscountPercent, TaxRate string
	Subtotal, Discount, Tax, Total                string
}

// QuoteDoc is the data a quote template (报价单) sees. The quotes module
// fills it; Company is filled by the renderer from the template's
// letterhead, whatever the caller put there.
type QuoteDoc struct {
	Company                        Party // filled by the renderer from the template's letterhead, not by the caller
	Number                         string
	Version                        int
	Title                          string
	Status                         string
	IssuedOn, ValidUntil           string // YYYY-MM-DD
	Customer                       Party
	Contact                        Party
	Owner                          Party // the sales rep
	Currency                       string
	Lines                          []QuoteLine
	Subtotal, Discount, Tax, Total string // money strings
	Notes, Terms                   string
}

func (d QuoteDoc) withCompany(c Party) any {
	d.Company = c
	return d
}

// defaultQuoteBody is the built-in quote template: Chinese, A4.
//
//go:embed quote.html.tmpl
var defaultQuoteBody string

// SampleQuote is a realistic quote, with awkward values (an escaped name,
// zero discounts, amounts whose capital form has 零, a long
// specification), that every quote template must render before it is
// saved.
func SampleQuote() QuoteDoc {
	return QuoteDoc{
		Number:     "QT-2026-000128",
		Version:    2,
		Title:      "客户管理系统及实施服务报价",
		Status:     "sent",
		IssuedOn:   "2026-12-07",
		ValidUntil: "2027-01-06",
		Customer: Party{Name: "上海星河贸易有限公司 & 子公司", Address: "上海市浦东新区世纪大道100号 20层",
			Phone: "021-5888 0000", Email: "purchase@xinghe.example.cn", TaxID: "91310115MA1H7XXXX2"},
		Contact:  Party{Name: "王小丽", Phone: "138 0013 8000", Email: "wangxl@xinghe.example.cn"},
		Owner:    Party{Name: "李明", Phone: "139 1234 5678", Email: "liming@example.com"},
		Currency: "CNY",
		Lines: []QuoteLine{
			{No: 1, SKU: "CRM-PRO-1Y", Name: "客户管理系统专业版（一年）", Specification: "50 用户；含移动端 <App>", Unit: "套",
				Quantity: "2", UnitPrice: "19800.00", DiscountPercent: "10", TaxRate: "6",
				Subtotal: "39600.00", Discount: "3960.00", Tax: "2138.40", Total: "37778.40"},
			{No: 2, SKU: "SVC-IMPL", Name: "实施服务", Specification: "现场实施，按人天计", Unit: "人天",
				Quantity: "12.5", UnitPrice: "1500.00", DiscountPercent: "0", TaxRate: "6",
				Subtotal: "18750.00", Discount: "0.00", Tax: "1125.00", Total: "19875.00"},
			{No: 3, SKU: "HW-PAD-10", Name: "平板终端", Specification: "", Unit: "台",
				Quantity: "3", UnitPrice: "1001.35", DiscountPercent: "2.5", TaxRate: "13",
				Subtotal: "3004.05", Discount: "75.10", Tax: "380.76", Total: "3309.71"},
		},
		Subtotal: "61354.05",
		Discount: "4035.10",
		Tax:      "3644.16",
		Total:    "60963.11",
		Notes:    "价格含税；交付周期为合同签订后 15 个工作日。",
		Terms:    "1. 本报价有效期 30 天。\n2. 付款方式：合同签订后预付 50%，验收后付清余款。",
	}
}
