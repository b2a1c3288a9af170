package httpapi

import (
	"context"
	"strings"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/personaldata"
	"github.com/shoalcrm/shoal/internal/records"
)

// exportDisposition asks a browser to save the export as a file.
const exportDisposition = `attachment; filename="personal-data.json"`

// ExportPersonalData answers everything held about one person.
func (s *Server) ExportPersonalData(ctx context.Context, req api.ExportPersonalDataRequestObject) (api.ExportPersonalDataResponseObject, error) {
	b := req.Body
	notePersonalData(ctx, b.Phone, b.Email, b.Name)
	ex, err := s.personalData.Export(ctx, auth.FromContext(ctx), personaldata.Query{Phone: b.Phone, Email: b.Email, Name: b.Name})
	if err != nil {
		return nil, err
	}
	out := api.PersonalDataExport{GeneratedAt: ex.GeneratedAt, MatchedOn: api.PersonalDataMatchedOn(ex.MatchedOn),
		Leads: []api.PersonalDataLead{}, Customers: []api.PersonalDataCustomer{}, Contacts: []api.Contact{},
		Mentions: followUpsOut(ex.Mentions)}
	for _, r := range ex.Leads {
		out.Leads = append(out.Leads, api.PersonalDataLead{Lead: leadOut(&records.LeadView{Lead: r.Row, OwnerName: r.OwnerName}),
			FollowUps: followUpsOut(r.FollowUps), History: historyOut(r.History), ClaimRequests: claimRequestsOut(r.ClaimRequests)})
	}
	for _, r := range ex.Customers {
		out.Customers = append(out.Customers, api.PersonalDataCustomer{Customer: customerOut(&records.CustomerView{Customer: r.Row, OwnerName: r.OwnerName}),
			FollowUps: followUpsOut(r.FollowUps), History: historyOut(r.History), ClaimRequests: claimRequestsOut(r.ClaimRequests)})
	}
	for _, c := range ex.Contacts {
		out.Contacts = append(out.Contacts, contactOut(&records.ContactView{Contact: c}))
	}
	disp := exportDisposition
	return api.ExportPersonalData200JSONResponse{Body: out, Headers: api.ExportPersonalData200ResponseHeaders{ContentDisposition: &disp}}, nil
}

// ErasePersonalData anonymises one person's records (or reports what it
// would, in a dry run).
func (s *Server) ErasePersonalData(ctx context.Context, req api.ErasePersonalDataRequestObject) (api.ErasePersonalDataResponseObject, error) {
	b := req.Body
	notePersonalData(ctx, b.Phone, b.Email, b.Name)
	dry := b.DryRun != nil && *b.DryRun
	res, err := s.personalData.Erase(ctx, auth.FromContext(ctx), personaldata.Query{Phone: b.Phone, Email: b.Email, Name: b.Name}, dry)
	if err != nil {
		return nil, err
	}
	c := res.Redacted
	out := api.PersonalDataErasure{DryRun: res.DryRun, MatchedOn: api.PersonalDataMatchedOn(res.MatchedOn),
		Records: make([]api.PersonalDataErasedRecord, len(res.Records)),
		Redacted: api.PersonalDataRedacted{FollowUps: int32(c.FollowUps), History: int32(c.History), ClaimRequests: int32(c.ClaimRequests),
			ReclaimWarnings: int32(c.ReclaimWarnings), Events: int32(c.Events), DedupeKeys: int32(c.DedupeKeys)}}
	for i, r := range res.Records {
		out.Records[i] = api.PersonalDataErasedRecord{Kind: api.PersonalDataErasedRecordKind(r.Kind), Id: r.ID, Erased: r.Erased, Fields: r.Fields}
	}
	return api.ErasePersonalData200JSONResponse{Body: out}, nil
}

// notePersonalData notes the audit target, and in the detail which kind
// of value named the person (never the value), before the transaction
// writes the row.
func notePersonalData(ctx context.Context, phone, email, name *string) {
	noteTarget(ctx, "personalData", "")
	var by []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"phone", phone}, {"email", email}, {"name", name}} {
		if f.v != nil {
			by = append(by, f.name)
		}
	}
	if len(by) > 0 {
		noteDetail(ctx, "by="+strings.Join(by, ","))
	}
}

func followUpsOut(list []*ent.FollowUp) []api.FollowUp {
	out := make([]api.FollowUp, len(list))
	for i, f := range list {
		out[i] = followUpOut(f)
	}
	return out
}

func claimRequestsOut(list []*ent.ClaimRequest) []api.ClaimRequest {
	out := make([]api.ClaimRequest, len(list))
	for i, r := range list {
		out[i] = claimRequestOut(r)
	}
	return out
}
