package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/httpapi"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ---- helpers of the event tests (prefix ev) ----

// evWant is an event an operation must write: its type and subject.
type evWant struct {
	typ     events.Type
	subject string
}

// evCase performs one write operation of the spec. prep sets up what the
// operation needs (its own writes are not counted) and returns act, which
// performs the operation and returns the events it must write: exactly
// those, no more.
type evCase struct {
	op   string // operationId
	name string
	prep func(t *testing.T, w *evWorld) (act func() []evWant)
}

// evNone are the spec's write operations that change no entity, so emit no
// event, and why.
var evNone = map[string]string{
	"login":            "starts a login session; sessions are not domain entities (the audit log records logins)",
	"refreshToken":     "rotates a session's refresh token; not a domain entity",
	"logout":           "ends a session; not a domain entity",
	"previewPoolRules": "read-only: a POST only to carry the proposed rules",
	"advanceTestClock": "moves the test clock of a test server; changes no entity",

	"exportPersonalData": "read-only: a POST so that the person's value travels in the body, not the URL",
	"redeliverWebhook":   "sends an event already in the feed again; the new delivery is its record (listWebhookDeliveries)",
}

// evBackground are the event types no operation writes, only background
// work, with where that is tested.
var evBackground = map[events.Type]string{
	events.WebhookDisabled: "the delivery job writes it after 3 days of failures (internal/webhooks TestFailedAfterADayDisabledAfterThree)",
}

// evWorld is the sweep tests' world (test clock, team with a supervisor
// and two reps, an admin) plus a pool for ownership operations that the
// team belongs to, the supervisor manages, and that allows freezing.
type evWorld struct {
	*swWorld
	pools map[string]string // kind → pool id
}

func newEVWorld(t *testing.T, databaseURL string) *evWorld {
	w := &evWorld{swWorld: newSWWorld(t, databaseURL), pools: map[string]string{}}
	for _, kind := range []string{"lead", "customer"} {
		w.pools[kind] = w.pool(kind, map[string]any{"memberTeamIds": []string{w.team.String()},
			"managerIds": []string{w.sup.ID}, "freezeMaxDays": 30})
	}
	return w
}

// pooled is a new unowned record in poolID.
func (w *evWorld) pooled(kind, poolID string) string {
	w.t.Helper()
	b := swBody(kind, nil)
	b["poolId"] = poolID
	var r swRecord
	w.admin.Do("POST", "/v1/"+kind+"s", b).Expect(http.StatusCreated).JSON(&r)
	if r.OwnerID != nil {
		w.t.Fatalf("pooled %s owned by %s", kind, *r.OwnerID)
	}
	return r.ID
}

// claimedBy is a record of w's pool claimed by c.
func (w *evWorld) claimedBy(c swActor, kind string) string {
	w.t.Helper()
	return w.claimed(c, kind, w.pools[kind], nil).ID
}

// op performs an ownership operation and expects status.
func (w *evWorld) op(c swActor, kind, id, op string, body any, status int) *apitest.Response {
	w.t.Helper()
	return c.Do("POST", "/v1/"+kind+"s/"+id+"/"+op, body).Expect(status)
}

// counts is the number of events of each type.
func (w *evWorld) counts(t *testing.T) map[string]int {
	t.Helper()
	var rows []struct {
		Type  string `json:"type"`
		Count int    `json:"count"`
	}
	if err := w.env.App.Store.Client.DomainEvent.Query().GroupBy(domainevent.FieldType).
		Aggregate(ent.Count()).Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Type] = r.Count
	}
	return out
}

// event is the newest event of a type about a subject.
func (w *evWorld) event(t *testing.T, typ events.Type, subject string) *ent.DomainEvent {
	t.Helper()
	id, err := uuid.Parse(subject)
	if err != nil {
		t.Fatalf("subject %q: %v", subject, err)
	}
	e, err := w.env.App.Store.Client.DomainEvent.Query().
		Where(domainevent.TypeEQ(string(typ)), domainevent.SubjectID(id)).
		Order(ent.Desc(domainevent.FieldID)).First(context.Background())
	if err != nil {
		t.Fatalf("no %s event about %s: %v", typ, subject, err)
	}
	return e
}

// evFields is the changed-field list of an update event.
func evFields(t *testing.T, e *ent.DomainEvent) []string {
	t.Helper()
	var p struct {
		Data struct {
			Fields []string `json:"fields"`
		} `json:"data"`
	}
	raw, _ := json.Marshal(e.Data)
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p.Data.Fields
}

func evID(t *testing.T, res *apitest.Response) string {
	t.Helper()
	id, _ := res.Map()["id"].(string)
	if id == "" {
		t.Fatalf("no id in %s", res.Body)
	}
	return id
}

// evCases is the table: every write operation of the spec with the
// events it must write.
func evCases() []evCase {
	var cases []evCase
	add := func(op, name string, prep func(t *testing.T, w *evWorld) func() []evWant) {
		cases = append(cases, evCase{op: op, name: name, prep: prep})
	}

	// Users, teams, API keys, settings, pools.
	add("createUser", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/users", map[string]any{"email": w.env.Unique("evuser") + "@example.com",
				"name": "Ev User", "role": "rep", "password": apitest.Password}).Expect(http.StatusCreated)
			return []evWant{{events.UserCreated, evID(t, res)}}
		}
	})
	add("updateUser", "", func(t *testing.T, w *evWorld) func() []evWant {
		u := w.user("rep", &w.team)
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/users/"+u.ID, map[string]any{"name": "Renamed", "password": apitest.Password + "!"}, "If-Match", w.admin.ETag("/v1/users/"+u.ID)).
				Expect(http.StatusOK)
			return []evWant{{events.UserUpdated, u.ID}}
		}
	})
	add("changeMyPassword", "", func(t *testing.T, w *evWorld) func() []evWant {
		u := w.user("rep", &w.team)
		return func() []evWant {
			u.Do("POST", "/v1/me/password", map[string]any{"currentPassword": apitest.Password,
				"newPassword": "another horse battery staple"}).Expect(http.StatusOK)
			return []evWant{{events.UserUpdated, u.ID}}
		}
	})
	add("createTeam", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/teams", map[string]any{"name": w.env.Unique("Ev team ")}).Expect(http.StatusCreated)
			return []evWant{{events.TeamCreated, evID(t, res)}}
		}
	})
	add("updateTeam", "", func(t *testing.T, w *evWorld) func() []evWant {
		tm := w.env.Team(w.env.Unique("Ev team "), nil)
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/teams/"+tm.ID.String(), map[string]any{"name": w.env.Unique("Renamed ")}, "If-Match", w.admin.ETag("/v1/teams/"+tm.ID.String())).Expect(http.StatusOK)
			return []evWant{{events.TeamUpdated, tm.ID.String()}}
		}
	})
	add("createApiKey", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/api-keys", map[string]any{"name": "Ev key", "scopes": []string{"leads:read"}}).
				Expect(http.StatusCreated)
			return []evWant{{events.APIKeyCreated, evID(t, res)}}
		}
	})
	add("revokeApiKey", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.admin.Do("POST", "/v1/api-keys", map[string]any{"name": "Ev key", "scopes": []string{"leads:read"}}).
			Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("DELETE", "/v1/api-keys/"+id, nil).Expect(http.StatusNoContent)
			return []evWant{{events.APIKeyRevoked, id}}
		}
	})
	// Tags: a rename or delete also updates every record carrying the tag.
	tagged := func(w *evWorld) (tag, lead, customer string) {
		name := "ev-" + uuid.NewString()[:8]
		tag = evID(w.t, w.admin.Do("POST", "/v1/tags", map[string]any{"name": name}).Expect(http.StatusCreated))
		lead = evID(w.t, w.admin.Do("POST", "/v1/leads", swBody("lead", map[string]any{"tags": []string{name}})).Expect(http.StatusCreated))
		customer = evID(w.t, w.admin.Do("POST", "/v1/customers", swBody("customer", map[string]any{"tags": []string{"x", name}})).Expect(http.StatusCreated))
		return tag, lead, customer
	}
	add("createTag", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/tags", map[string]any{"name": "ev-" + uuid.NewString()[:8]}).Expect(http.StatusCreated)
			return []evWant{{events.TagCreated, evID(t, res)}}
		}
	})
	add("updateTag", "rename", func(t *testing.T, w *evWorld) func() []evWant {
		tag, lead, customer := tagged(w)
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/tags/"+tag, map[string]any{"name": "ev-" + uuid.NewString()[:8]}, "If-Match", w.admin.ETag("/v1/tags/"+tag)).Expect(http.StatusOK)
			return []evWant{{events.TagUpdated, tag}, {events.LeadUpdated, lead}, {events.CustomerUpdated, customer}}
		}
	})
	add("deleteTag", "", func(t *testing.T, w *evWorld) func() []evWant {
		tag, lead, customer := tagged(w)
		return func() []evWant {
			w.admin.Do("DELETE", "/v1/tags/"+tag, nil, "If-Match", w.admin.ETag("/v1/tags/"+tag)).Expect(http.StatusNoContent)
			return []evWant{{events.TagDeleted, tag}, {events.LeadUpdated, lead}, {events.CustomerUpdated, customer}}
		}
	})
	add("updateSettings", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/settings", map[string]any{"maxOwnedLeads": 5000}, "If-Match", w.admin.ETag("/v1/settings")).Expect(http.StatusOK)
			return []evWant{{events.SettingsUpdated, uuid.Nil.String()}}
		}
	})
	add("createPool", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": w.env.Unique("Ev pool ")}).
				Expect(http.StatusCreated)
			return []evWant{{events.PoolCreated, evID(t, res)}}
		}
	})
	add("updatePool", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := w.pool("lead", nil)
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/pools/"+id, map[string]any{"name": w.env.Unique("Renamed pool "), "idleDays": 40}, "If-Match", w.admin.ETag("/v1/pools/"+id)).
				Expect(http.StatusOK)
			return []evWant{{events.PoolUpdated, id}}
		}
	})

	// Records, contacts, follow-ups.
	for _, kind := range []string{"lead", "customer"} {
		Kind := strings.ToUpper(kind[:1]) + kind[1:]
		typ := func(verb string) events.Type { return events.Type(kind + "." + verb) }
		add("create"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			return func() []evWant {
				res := w.repA.Do("POST", "/v1/"+kind+"s", swBody(kind, nil)).Expect(http.StatusCreated)
				return []evWant{{typ("created"), evID(t, res)}}
			}
		})
		add("update"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.owned(w.repA, kind).ID
			etag := w.repA.Do("GET", "/v1/"+kind+"s/"+id, nil).Expect(http.StatusOK).Header.Get("ETag")
			return func() []evWant {
				w.repA.Do("PATCH", "/v1/"+kind+"s/"+id, map[string]any{"region": "East"}, "If-Match", etag).Expect(http.StatusOK)
				return []evWant{{typ("updated"), id}}
			}
		})
		add("batchClaim"+Kind+"s", "", func(t *testing.T, w *evWorld) func() []evWant {
			a, b := w.pooled(kind, w.pools[kind]), w.pooled(kind, w.pools[kind])
			return func() []evWant {
				w.repA.Do("POST", "/v1/"+kind+"s/batch-claim", map[string]any{"ids": []string{a, b}}).Expect(http.StatusOK)
				return []evWant{{typ("claimed"), a}, {typ("claimed"), b}}
			}
		})
		add("claim"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.pooled(kind, w.pools[kind])
			return func() []evWant {
				w.op(w.repA, kind, id, "claim", nil, http.StatusOK)
				return []evWant{{typ("claimed"), id}}
			}
		})
		add("return"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.claimedBy(w.repA, kind)
			return func() []evWant {
				w.op(w.repA, kind, id, "return", map[string]any{"reason": "no budget"}, http.StatusOK)
				return []evWant{{typ("returned"), id}}
			}
		})
		add("assign"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.pooled(kind, w.pools[kind])
			return func() []evWant {
				w.op(w.sup, kind, id, "assign", map[string]any{"ownerId": w.repA.ID}, http.StatusOK)
				return []evWant{{typ("assigned"), id}}
			}
		})
		add("transfer"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.claimedBy(w.repA, kind)
			return func() []evWant {
				w.op(w.sup, kind, id, "transfer", map[string]any{"ownerId": w.repB.ID, "reason": "holiday"}, http.StatusOK)
				return []evWant{{typ("transferred"), id}}
			}
		})
		add("freeze"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.claimedBy(w.repA, kind)
			return func() []evWant {
				w.op(w.repA, kind, id, "freeze", map[string]any{}, http.StatusOK)
				return []evWant{{typ("frozen"), id}}
			}
		})
		add("unfreeze"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.claimedBy(w.repA, kind)
			w.op(w.repA, kind, id, "freeze", map[string]any{}, http.StatusOK)
			return func() []evWant {
				w.op(w.repA, kind, id, "unfreeze", nil, http.StatusOK)
				return []evWant{{typ("unfrozen"), id}}
			}
		})
		add("invalidate"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.claimedBy(w.repA, kind)
			return func() []evWant {
				w.op(w.repA, kind, id, "invalidate", map[string]any{"reason": "fake number"}, http.StatusOK)
				return []evWant{{typ("invalidated"), id}}
			}
		})
		add("restore"+Kind, "", func(t *testing.T, w *evWorld) func() []evWant {
			id := w.claimedBy(w.repA, kind)
			w.op(w.repA, kind, id, "invalidate", map[string]any{"reason": "fake number"}, http.StatusOK)
			return func() []evWant {
				w.op(w.sup, kind, id, "restore", nil, http.StatusOK)
				return []evWant{{typ("restored"), id}}
			}
		})
	}
	add("convertLead", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := w.owned(w.repA, "lead").ID
		return func() []evWant {
			res := w.op(w.repA, "lead", id, "convert", map[string]any{"customerName": w.env.Unique("Converted ")}, http.StatusCreated)
			return []evWant{{events.LeadConverted, id}, {events.CustomerCreated, evID(t, res)}}
		}
	})
	// Merges: the merged record gets <kind>.merged, the survivor
	// <kind>.updated, a customer's moved contacts contact.updated.
	add("mergeLeads", "", func(t *testing.T, w *evWorld) func() []evWant {
		keep, gone := w.owned(w.repA, "lead").ID, w.owned(w.repA, "lead").ID
		return func() []evWant {
			w.sup.Do("POST", "/v1/leads/merge", map[string]any{"survivorId": keep, "mergedIds": []string{gone}}).Expect(http.StatusOK)
			return []evWant{{events.LeadMerged, gone}, {events.LeadUpdated, keep}}
		}
	})
	add("mergeCustomers", "", func(t *testing.T, w *evWorld) func() []evWant {
		keep, gone := w.owned(w.repA, "customer").ID, w.owned(w.repA, "customer").ID
		ct := evID(t, w.repA.Do("POST", "/v1/customers/"+gone+"/contacts", map[string]any{"name": "Li"}).Expect(http.StatusCreated))
		return func() []evWant {
			w.sup.Do("POST", "/v1/customers/merge", map[string]any{"survivorId": keep, "mergedIds": []string{gone}}).Expect(http.StatusOK)
			return []evWant{{events.CustomerMerged, gone}, {events.CustomerUpdated, keep}, {events.ContactUpdated, ct}}
		}
	})
	// An erasure: the person's lead, customer (by name) and contact get
	// <kind>.erased, a contact whose notes only mention him
	// contact.updated.
	add("erasePersonalData", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.repA.Do("POST", "/v1/leads", map[string]any{"name": "张三丰", "phone": "13800138000"}).Expect(http.StatusCreated))
		self := evID(t, w.repA.Do("POST", "/v1/customers", map[string]any{"name": "张三丰"}).Expect(http.StatusCreated))
		cu := w.owned(w.repA, "customer").ID
		me := evID(t, w.repA.Do("POST", "/v1/customers/"+cu+"/contacts", map[string]any{"name": "张三丰"}).Expect(http.StatusCreated))
		ct := evID(t, w.repA.Do("POST", "/v1/customers/"+cu+"/contacts", map[string]any{"name": "Li", "notes": "knows 张三丰"}).Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("POST", "/v1/personal-data/erase", map[string]any{"name": "张三丰"}).Expect(http.StatusOK)
			return []evWant{{events.LeadErased, id}, {events.CustomerErased, self}, {events.ContactErased, me}, {events.ContactUpdated, ct}}
		}
	})
	add("updateCustomerDealStatus", "dealt", func(t *testing.T, w *evWorld) func() []evWant {
		id := w.owned(w.repA, "customer").ID
		return func() []evWant {
			w.repA.Do("PUT", "/v1/customers/"+id+"/deal-status", map[string]any{"dealStatus": true}).Expect(http.StatusOK)
			return []evWant{{events.CustomerDealt, id}}
		}
	})
	add("updateCustomerDealStatus", "undealt", func(t *testing.T, w *evWorld) func() []evWant {
		id := w.owned(w.repA, "customer").ID
		w.repA.Do("PUT", "/v1/customers/"+id+"/deal-status", map[string]any{"dealStatus": true}).Expect(http.StatusOK)
		return func() []evWant {
			w.repA.Do("PUT", "/v1/customers/"+id+"/deal-status", map[string]any{"dealStatus": false}).Expect(http.StatusOK)
			return []evWant{{events.CustomerUndealt, id}}
		}
	})
	contact := func(w *evWorld) string {
		cust := w.owned(w.repA, "customer").ID
		res := w.repA.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "Li"}).Expect(http.StatusCreated)
		return evID(w.t, res)
	}
	add("createContact", "", func(t *testing.T, w *evWorld) func() []evWant {
		cust := w.owned(w.repA, "customer").ID
		return func() []evWant {
			res := w.repA.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "Li"}).Expect(http.StatusCreated)
			return []evWant{{events.ContactCreated, evID(t, res)}}
		}
	})
	add("updateContact", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := contact(w)
		return func() []evWant {
			w.repA.Do("PATCH", "/v1/contacts/"+id, map[string]any{"title": "CFO"}, "If-Match", w.repA.ETag("/v1/contacts/"+id)).Expect(http.StatusOK)
			return []evWant{{events.ContactUpdated, id}}
		}
	})
	add("deleteContact", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := contact(w)
		return func() []evWant {
			w.repA.Do("DELETE", "/v1/contacts/"+id, nil, "If-Match", w.repA.ETag("/v1/contacts/"+id)).Expect(http.StatusNoContent)
			return []evWant{{events.ContactDeleted, id}}
		}
	})
	add("createFollowUp", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := w.owned(w.repA, "lead").ID
		return func() []evWant {
			res := swFollowUp(w.repA.Client, "lead", id, w.clock.Now().Add(-time.Minute)).Expect(http.StatusCreated)
			return []evWant{{events.FollowUpCreated, evID(t, res)}}
		}
	})

	// Claim requests.
	request := func(w *evWorld) (record, request string) {
		pl := w.pool("lead", map[string]any{"memberTeamIds": []string{w.team.String()}, "managerIds": []string{w.sup.ID},
			"claimRequiresApproval": true})
		record = w.pooled("lead", pl)
		return record, evID(w.t, w.op(w.repA, "lead", record, "claim", nil, http.StatusAccepted))
	}
	add("claimLead", "in an approval pool", func(t *testing.T, w *evWorld) func() []evWant {
		pl := w.pool("lead", map[string]any{"memberTeamIds": []string{w.team.String()}, "claimRequiresApproval": true})
		id := w.pooled("lead", pl)
		return func() []evWant {
			res := w.op(w.repA, "lead", id, "claim", nil, http.StatusAccepted)
			req := evID(t, res)
			return []evWant{{events.ClaimRequestCreated, req}, {events.ApprovalRequested, evApprovalOf(t, w, req)}}
		}
	})
	add("approveClaimRequest", "", func(t *testing.T, w *evWorld) func() []evWant {
		record, req := request(w)
		return func() []evWant {
			w.sup.Do("POST", "/v1/claim-requests/"+req+"/approve", map[string]any{"reason": "fits"}).Expect(http.StatusOK)
			ap := evApprovalOf(t, w, req)
			return []evWant{{events.ClaimRequestApproved, req}, {events.LeadClaimed, record},
				{events.ApprovalStepDecided, ap}, {events.ApprovalApproved, ap}}
		}
	})
	add("rejectClaimRequest", "", func(t *testing.T, w *evWorld) func() []evWant {
		_, req := request(w)
		return func() []evWant {
			w.sup.Do("POST", "/v1/claim-requests/"+req+"/reject", map[string]any{"reason": "not yours"}).Expect(http.StatusOK)
			ap := evApprovalOf(t, w, req)
			return []evWant{{events.ClaimRequestRejected, req}, {events.ApprovalStepDecided, ap}, {events.ApprovalRejected, ap}}
		}
	})
	add("decideApproval", "claim request", func(t *testing.T, w *evWorld) func() []evWant {
		record, req := request(w)
		ap := evApprovalOf(t, w, req)
		return func() []evWant {
			w.sup.Do("POST", "/v1/approvals/"+ap+"/decision", map[string]any{"decision": "approve"}).Expect(http.StatusOK)
			return []evWant{{events.ClaimRequestApproved, req}, {events.LeadClaimed, record},
				{events.ApprovalStepDecided, ap}, {events.ApprovalApproved, ap}}
		}
	})

	// Quotes and approvals.
	quote := func(t *testing.T, w *evWorld, costed bool) string {
		cu := w.claimed(w.repA, "customer", w.pools["customer"], nil)
		return qtCreate(t, w.repA.Client, cu.ID, qtProduct(t, w.admin.Client, "100.00", costed, ""), "1")
	}
	add("createQuote", "", func(t *testing.T, w *evWorld) func() []evWant {
		cu := w.claimed(w.repA, "customer", w.pools["customer"], nil)
		return func() []evWant {
			return []evWant{{events.QuoteCreated, qtCreate(t, w.repA.Client, cu.ID, "", "1")}}
		}
	})
	add("updateQuote", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := quote(t, w, true)
		return func() []evWant {
			w.repA.Do("PATCH", "/v1/quotes/"+id, map[string]any{"title": "ev2"}, "If-Match", w.repA.ETag("/v1/quotes/"+id)).Expect(http.StatusOK)
			return []evWant{{events.QuoteUpdated, id}}
		}
	})
	add("submitQuote", "approved at once", func(t *testing.T, w *evWorld) func() []evWant {
		id := quote(t, w, true)
		return func() []evWant {
			w.repA.Do("POST", "/v1/quotes/"+id+"/submit", nil).Expect(http.StatusOK)
			return []evWant{{events.QuoteSubmitted, id}}
		}
	})
	add("submitQuote", "needs approval", func(t *testing.T, w *evWorld) func() []evWant {
		id := quote(t, w, false)
		return func() []evWant {
			res := w.repA.Do("POST", "/v1/quotes/"+id+"/submit", nil).Expect(http.StatusOK)
			return []evWant{{events.QuoteSubmitted, id}, {events.ApprovalRequested, res.Map()["approvalId"].(string)}}
		}
	})
	pending := func(t *testing.T, w *evWorld) (string, string) {
		id := quote(t, w, false)
		res := w.repA.Do("POST", "/v1/quotes/"+id+"/submit", nil).Expect(http.StatusOK)
		return id, res.Map()["approvalId"].(string)
	}
	add("decideApproval", "quote approved", func(t *testing.T, w *evWorld) func() []evWant {
		id, ap := pending(t, w)
		return func() []evWant {
			w.sup.Do("POST", "/v1/approvals/"+ap+"/decision", map[string]any{"decision": "approve"}).Expect(http.StatusOK)
			return []evWant{{events.ApprovalStepDecided, ap}, {events.ApprovalApproved, ap}, {events.QuoteApproved, id}}
		}
	})
	add("decideApproval", "quote rejected", func(t *testing.T, w *evWorld) func() []evWant {
		id, ap := pending(t, w)
		return func() []evWant {
			w.sup.Do("POST", "/v1/approvals/"+ap+"/decision", map[string]any{"decision": "reject", "comment": "no"}).Expect(http.StatusOK)
			return []evWant{{events.ApprovalStepDecided, ap}, {events.ApprovalRejected, ap}, {events.QuoteRejected, id}}
		}
	})
	sent := func(t *testing.T, w *evWorld) string {
		id := quote(t, w, true)
		w.repA.Do("POST", "/v1/quotes/"+id+"/send", nil).Expect(http.StatusOK)
		return id
	}
	add("sendQuote", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := quote(t, w, true)
		return func() []evWant {
			w.repA.Do("POST", "/v1/quotes/"+id+"/send", nil).Expect(http.StatusOK)
			return []evWant{{events.QuoteSent, id}}
		}
	})
	add("acceptQuote", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := sent(t, w)
		return func() []evWant {
			w.repA.Do("POST", "/v1/quotes/"+id+"/accept", nil).Expect(http.StatusOK)
			return []evWant{{events.QuoteAccepted, id}}
		}
	})
	add("declineQuote", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := sent(t, w)
		return func() []evWant {
			w.repA.Do("POST", "/v1/quotes/"+id+"/decline", map[string]any{"reason": "price"}).Expect(http.StatusOK)
			return []evWant{{events.QuoteDeclined, id}}
		}
	})
	add("reviseQuote", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := sent(t, w)
		return func() []evWant {
			res := w.repA.Do("POST", "/v1/quotes/"+id+"/revise", nil).Expect(http.StatusCreated)
			return []evWant{{events.QuoteRevised, evID(t, res)}}
		}
	})
	add("updateApprovalFlow", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			path := "/v1/approval-flows/claim_request"
			w.admin.Do("PUT", path, map[string]any{"rules": []any{map[string]any{"name": "default",
				"steps": []any{map[string]any{"approver": "pool_manager"}}}}}, "If-Match", w.admin.ETag(path)).Expect(http.StatusOK)
			return []evWant{{events.ApprovalFlowUpdated, uuid.NewSHA1(uuid.NameSpaceURL, []byte("shoal:approval-flow:claim_request")).String()}}
		}
	})

	// Sweeps: last, as they move the clock. The warning's pool reclaims
	// after 30 idle days, so the reclaim case's two days do not make it due.
	add("runSweep", "dry run", func(t *testing.T, w *evWorld) func() []evWant {
		pl := w.pool("lead", map[string]any{"memberTeamIds": []string{w.team.String()}, "idleDays": 1})
		w.claimed(w.repA, "lead", pl, nil)
		w.advance(2 * swDay)
		return func() []evWant {
			if res := w.sweep(true, nil); len(res.Reclaimed) == 0 {
				t.Fatal("the dry run would reclaim nothing")
			}
			return nil
		}
	})
	add("runSweep", "warning", func(t *testing.T, w *evWorld) func() []evWant {
		w.sweep(false, nil) // reclaims what the dry run saw
		var wants []evWant
		for _, kind := range []string{"lead", "customer"} {
			pl := w.pool(kind, map[string]any{"memberTeamIds": []string{w.team.String()}, "idleDays": 30, "notifyDaysBefore": 29})
			wants = append(wants, evWant{events.Type(kind + ".reclaim_warned"), w.claimed(w.repA, kind, pl, nil).ID})
		}
		w.advance(2 * swDay)
		return func() []evWant {
			w.sweep(false, nil)
			return wants
		}
	})
	add("runSweep", "reclaim", func(t *testing.T, w *evWorld) func() []evWant {
		var wants []evWant
		for _, kind := range []string{"lead", "customer"} {
			pl := w.pool(kind, map[string]any{"memberTeamIds": []string{w.team.String()}, "idleDays": 1})
			wants = append(wants, evWant{events.Type(kind + ".reclaimed"), w.claimed(w.repA, kind, pl, nil).ID})
		}
		w.advance(2 * swDay)
		return func() []evWant {
			w.sweep(false, nil)
			return wants
		}
	})
	add("handoverUser", "", func(t *testing.T, w *evWorld) func() []evWant {
		leaver := w.user("rep", &w.team)
		ld, cu := w.claimedBy(leaver, "lead"), w.claimedBy(leaver, "customer")
		w.env.WorkJobs() // what earlier cases queued is not this case's
		return func() []evWant {
			res := w.sup.Do("POST", "/v1/users/"+leaver.ID+"/handover", map[string]any{"toUserId": w.repB.ID, "reason": "leaves"}).
				Expect(http.StatusAccepted)
			w.env.WorkJobs()
			h := evID(t, res)
			return []evWant{{events.HandoverCreated, h}, {events.LeadHandedOver, ld}, {events.CustomerHandedOver, cu}, {events.HandoverFinished, h}}
		}
	})
	add("createPipeline", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/pipelines", opPipelineBody("ev-"+uuid.NewString()[:8])).Expect(http.StatusCreated)
			return []evWant{{events.PipelineCreated, evID(t, res)}}
		}
	})
	add("updatePipeline", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.admin.Do("POST", "/v1/pipelines", opPipelineBody("ev-"+uuid.NewString()[:8])).Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/pipelines/"+id, map[string]any{"name": "ev-" + uuid.NewString()[:8]}, "If-Match", w.admin.ETag("/v1/pipelines/"+id)).Expect(http.StatusOK)
			return []evWant{{events.PipelineUpdated, id}}
		}
	})
	add("createOpportunity", "", func(t *testing.T, w *evWorld) func() []evWant {
		cu := w.claimed(w.repA, "customer", w.pools["customer"], nil)
		return func() []evWant {
			res := w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "ev", "customerId": cu.ID, "amount": "1.00"}).Expect(http.StatusCreated)
			return []evWant{{events.OpportunityCreated, evID(t, res)}}
		}
	})
	add("updateOpportunity", "", func(t *testing.T, w *evWorld) func() []evWant {
		cu := w.claimed(w.repA, "customer", w.pools["customer"], nil)
		id := evID(t, w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "ev", "customerId": cu.ID, "amount": "1.00"}).Expect(http.StatusCreated))
		return func() []evWant {
			w.repA.Do("PATCH", "/v1/opportunities/"+id, map[string]any{"amount": "2.00"}, "If-Match", w.repA.ETag("/v1/opportunities/"+id)).Expect(http.StatusOK)
			return []evWant{{events.OpportunityUpdated, id}}
		}
	})
	add("changeOpportunityStage", "won", func(t *testing.T, w *evWorld) func() []evWant {
		cu := w.claimed(w.repA, "customer", w.pools["customer"], nil)
		res := w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "ev", "customerId": cu.ID, "amount": "1.00"}).Expect(http.StatusCreated)
		id, pl := evID(t, res), res.Map()["pipelineId"].(string)
		won := opStage(t, w.repA.Client, pl, "won")
		return func() []evWant {
			w.repA.Do("POST", "/v1/opportunities/"+id+"/stage", map[string]any{"stageId": won}).Expect(http.StatusOK)
			return []evWant{{events.OpportunityStageChanged, id}, {events.CustomerDealt, cu.ID}}
		}
	})
	add("createProduct", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/products", map[string]any{"sku": "EV-" + uuid.NewString()[:8], "name": "ev", "listPrice": "1.00"}).Expect(http.StatusCreated)
			return []evWant{{events.ProductCreated, evID(t, res)}}
		}
	})
	add("updateProduct", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.admin.Do("POST", "/v1/products", map[string]any{"sku": "EV-" + uuid.NewString()[:8], "name": "ev", "listPrice": "1.00"}).Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/products/"+id, map[string]any{"listPrice": "2.00"}, "If-Match", w.admin.ETag("/v1/products/"+id)).Expect(http.StatusOK)
			return []evWant{{events.ProductUpdated, id}}
		}
	})
	add("updateDocumentTemplate", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/document-templates/quote", map[string]any{"companyName": w.env.Unique("公司")}, "If-Match", "*").Expect(http.StatusOK)
			return []evWant{{events.DocumentTemplateUpdated, uuid.Nil.String()}}
		}
	})
	add("createWebhook", "", func(t *testing.T, w *evWorld) func() []evWant {
		return func() []evWant {
			res := w.admin.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/ev", "eventTypes": []string{"*"}}).Expect(http.StatusCreated)
			return []evWant{{events.WebhookCreated, evID(t, res)}}
		}
	})
	add("updateWebhook", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.admin.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/ev", "eventTypes": []string{"*"}}).Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("PATCH", "/v1/webhooks/"+id, map[string]any{"active": false}, "If-Match", w.admin.ETag("/v1/webhooks/"+id)).Expect(http.StatusOK)
			return []evWant{{events.WebhookUpdated, id}}
		}
	})
	add("deleteWebhook", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.admin.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/ev", "eventTypes": []string{"*"}}).Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("DELETE", "/v1/webhooks/"+id, nil, "If-Match", w.admin.ETag("/v1/webhooks/"+id)).Expect(http.StatusNoContent)
			return []evWant{{events.WebhookDeleted, id}}
		}
	})
	add("pingWebhook", "", func(t *testing.T, w *evWorld) func() []evWant {
		id := evID(t, w.admin.Do("POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/ev", "eventTypes": []string{"*"}}).Expect(http.StatusCreated))
		return func() []evWant {
			w.admin.Do("POST", "/v1/webhooks/"+id+"/ping", nil).Expect(http.StatusAccepted)
			return []evWant{{events.WebhookPinged, id}}
		}
	})
	add("createImport", "", func(t *testing.T, w *evWorld) func() []evWant {
		w.env.WorkJobs() // what earlier cases queued is not this case's
		email := w.env.Unique("evimport") + "@example.com"
		return func() []evWant {
			res := imPost(t, w.sup.Client, "ev.csv", []byte("姓名,邮箱\n导入线索,"+email+"\n"), map[string]string{"kind": "lead"}).
				Expect(http.StatusAccepted)
			w.env.WorkJobs()
			imp := evID(t, res)
			l, err := w.env.App.Store.Client.Lead.Query().Where(lead.Email(email)).Only(context.Background())
			if err != nil {
				t.Fatalf("imported lead: %v", err)
			}
			return []evWant{{events.ImportCreated, imp}, {events.LeadCreated, l.ID.String()}, {events.ImportFinished, imp}}
		}
	})
	return cases
}

// TestEventsCoverSpecWrites: every write operation (non-GET) of the spec
// is in the event table or listed as emitting none with a reason, and
// every table entry is an operation of the spec.
func TestEventsCoverSpecWrites(t *testing.T) {
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	for _, c := range evCases() {
		inTable[c.op] = true
	}
	writes := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if method == http.MethodGet || method == http.MethodHead {
				continue
			}
			writes[op.OperationID] = true
			if !inTable[op.OperationID] && evNone[op.OperationID] == "" {
				t.Errorf("%s %s (%s) is in neither the event table nor the list of operations without events", method, path, op.OperationID)
			}
			if inTable[op.OperationID] && evNone[op.OperationID] != "" {
				t.Errorf("%s is both in the event table and listed as emitting none", op.OperationID)
			}
		}
	}
	for op := range inTable {
		if !writes[op] {
			t.Errorf("event table names %s, which is no write operation of the spec", op)
		}
	}
	for op := range evNone {
		if !writes[op] {
			t.Errorf("evNone names %s, which is no write operation of the spec", op)
		}
	}
}

// TestEventsOfWriteOperations performs every write operation of the table
// through the HTTP stack, on both engines, and checks that it wrote
// exactly its documented events, about the right subjects, with an actor.
// The operations that emit none are checked to emit none too where they
// can be run (a dry-run sweep here; login and logout below).
func TestEventsOfWriteOperations(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newEVWorld(t, databaseURL)
		covered := map[events.Type]bool{}
		for _, c := range evCases() {
			name := c.op
			if c.name != "" {
				name += "/" + c.name
			}
			t.Run(name, func(t *testing.T) {
				w.t = t
				act := c.prep(t, w)
				before := w.counts(t)
				wants := act()
				after := w.counts(t)
				wantDelta := map[string]int{}
				for _, want := range wants {
					wantDelta[string(want.typ)]++
				}
				for typ := range mergeKeys(before, after, wantDelta) {
					if got := after[typ] - before[typ]; got != wantDelta[typ] {
						t.Errorf("%d new %s events, want %d", got, typ, wantDelta[typ])
					}
				}
				for _, want := range wants {
					covered[want.typ] = true
					e := w.event(t, want.typ, want.subject)
					spec, _ := events.Lookup(want.typ)
					if e.SubjectKind != spec.Subject {
						t.Errorf("%s: subject kind %q, want %q", want.typ, e.SubjectKind, spec.Subject)
					}
					actor, _ := e.Data["actor"].(map[string]any)
					if actor["type"] == nil || actor["type"] == "" {
						t.Errorf("%s: no actor in %v", want.typ, e.Data)
					}
					if _, ok := e.Data["data"].(map[string]any); !ok {
						t.Errorf("%s: no data object in %v", want.typ, e.Data)
					}
				}
			})
		}
		w.t = t
		// Login and logout are writes without events.
		before := w.counts(t)
		c := w.env.Login(w.admin.email(t, w), apitest.Password)
		c.Do("POST", "/v1/auth/logout", map[string]any{"refreshToken": c.Refresh})
		if after := w.counts(t); !mapsEqual(before, after) {
			t.Errorf("login and logout wrote events: %v → %v", before, after)
		}
		// Every type the catalogue knows is written by some operation.
		for _, typ := range events.Types() {
			if !covered[typ] && evBackground[typ] == "" {
				t.Errorf("no operation of the table writes %s", typ)
			}
		}
	})
}

// email reads a user's email (the sweep world does not keep it).
func (a swActor) email(t *testing.T, w *evWorld) string {
	t.Helper()
	u, err := w.env.App.Store.Client.User.Get(context.Background(), a.UUID)
	if err != nil {
		t.Fatal(err)
	}
	return u.Email
}

func mergeKeys(ms ...map[string]int) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			out[k] = true
		}
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	for k := range mergeKeys(a, b) {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// TestEventPayloads checks what update events say: the names of the
// changed fields, never values, and never a secret.
func TestEventPayloads(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newEVWorld(t, databaseURL)
		ctx := context.Background()
		db := w.env.App.Store.Client

		// A lead update: only the field whose value changed.
		id := w.owned(w.repA, "lead")
		etag := w.repA.Do("GET", "/v1/leads/"+id.ID, nil).Expect(http.StatusOK).Header.Get("ETag")
		var l struct {
			Name string `json:"name"`
		}
		w.repA.Do("GET", "/v1/leads/"+id.ID, nil).Expect(http.StatusOK).JSON(&l)
		w.repA.Do("PATCH", "/v1/leads/"+id.ID, map[string]any{"name": l.Name, "notes": "secret plan", "region": "East"},
			"If-Match", etag).Expect(http.StatusOK)
		e := w.event(t, events.LeadUpdated, id.ID)
		if got := evFields(t, e); !slices.Equal(got, []string{"notes", "region"}) {
			t.Errorf("lead.updated fields %v, want [notes region]", got)
		}
		if raw, _ := json.Marshal(e.Data); strings.Contains(string(raw), "secret plan") {
			t.Errorf("lead.updated carries a value: %s", raw)
		}
		if a := e.Data["actor"].(map[string]any); a["type"] != "user" || a["id"] != w.repA.ID {
			t.Errorf("lead.updated actor %v, want user %s", a, w.repA.ID)
		}

		// A password change: the field's name, not the hash.
		u := w.user("rep", &w.team)
		w.admin.Do("PATCH", "/v1/users/"+u.ID, map[string]any{"password": "a brand new horse staple"}, "If-Match", w.admin.ETag("/v1/users/"+u.ID)).Expect(http.StatusOK)
		row, err := db.User.Get(ctx, u.UUID)
		if err != nil {
			t.Fatal(err)
		}
		e = w.event(t, events.UserUpdated, u.ID)
		raw, _ := json.Marshal(e.Data)
		if got := evFields(t, e); !slices.Equal(got, []string{"password"}) {
			t.Errorf("user.updated fields %v, want [password]", got)
		}
		if strings.Contains(string(raw), row.PasswordHash) || strings.Contains(string(raw), "brand new horse") {
			t.Errorf("user.updated carries the password: %s", raw)
		}

		// An API key: never its secret.
		var key struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}
		w.admin.Do("POST", "/v1/api-keys", map[string]any{"name": "Partner", "scopes": []string{"leads:read"}}).
			Expect(http.StatusCreated).JSON(&key)
		e = w.event(t, events.APIKeyCreated, key.ID)
		raw, _ = json.Marshal(e.Data)
		if key.Secret == "" || strings.Contains(string(raw), key.Secret) || strings.Contains(string(raw), key.Secret[:12]) {
			t.Errorf("api_key.created carries the secret: %s", raw)
		}

		// An ownership change: from, to, pool and reason.
		rec := w.claimedBy(w.repA, "lead")
		w.op(w.sup, "lead", rec, "transfer", map[string]any{"ownerId": w.repB.ID, "reason": "holiday"}, http.StatusOK)
		var p struct {
			Data events.Ownership `json:"data"`
		}
		raw, _ = json.Marshal(w.event(t, events.LeadTransferred, rec).Data)
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Data.Operation != "transfer" || p.Data.FromOwnerID == nil || p.Data.FromOwnerID.String() != w.repA.ID ||
			p.Data.ToOwnerID == nil || p.Data.ToOwnerID.String() != w.repB.ID || p.Data.Reason != "holiday" ||
			p.Data.PoolID.String() != w.pools["lead"] {
			t.Errorf("lead.transferred payload %s", raw)
		}
	})
}

// TestEventSameTransaction: with event inserts failing (a trigger on
// domain_events), the change the event describes rolls back with it: a
// lead update, an ownership operation and a team creation, on both
// engines.
func TestEventSameTransaction(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newEVWorld(t, databaseURL)
		ctx := context.Background()
		db := w.env.App.Store.Client
		id := w.owned(w.repA, "lead").ID
		pooled := w.pooled("lead", w.pools["lead"])
		etag := w.repA.Do("GET", "/v1/leads/"+id, nil).Expect(http.StatusOK).Header.Get("ETag")
		teamsBefore, err := db.Team.Query().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}

		postgres := strings.HasPrefix(databaseURL, "postgres")
		stmts := []string{`CREATE TRIGGER ev_refuse BEFORE INSERT ON domain_events
			BEGIN SELECT RAISE(ABORT, 'events refused'); END`}
		if postgres {
			stmts = []string{
				`CREATE FUNCTION ev_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'events refused'; END $$`,
				`CREATE TRIGGER ev_refuse BEFORE INSERT ON domain_events FOR EACH ROW EXECUTE FUNCTION ev_refuse()`,
			}
		}
		for _, s := range stmts {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}

		w.repA.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "must not stay"}, "If-Match", etag).
			Expect(http.StatusInternalServerError)
		w.op(w.repA, "lead", pooled, "claim", nil, http.StatusInternalServerError)
		w.admin.Do("POST", "/v1/teams", map[string]any{"name": w.env.Unique("Doomed ")}).Expect(http.StatusInternalServerError)

		row, err := db.Lead.Get(ctx, uuid.MustParse(id))
		if err != nil {
			t.Fatal(err)
		}
		if row.Notes == "must not stay" {
			t.Error("the lead update committed without its event")
		}
		if r := w.get("lead", pooled); r.OwnerID != nil {
			t.Errorf("the claim committed without its event: owner %s", *r.OwnerID)
		}
		if n := len(w.history("lead", pooled)); n != 1 {
			t.Errorf("%d history rows after a failed claim, want 1 (create)", n)
		}
		if n, err := db.Team.Query().Count(ctx); err != nil || n != teamsBefore {
			t.Errorf("%d teams after a failed create (%v), want %d", n, err, teamsBefore)
		}

		// Without the trigger the same writes go through.
		drop := []string{`DROP TRIGGER ev_refuse`}
		if postgres {
			drop = []string{`DROP TRIGGER ev_refuse ON domain_events`, `DROP FUNCTION ev_refuse()`}
		}
		for _, s := range drop {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		w.op(w.repA, "lead", pooled, "claim", nil, http.StatusOK)
		w.event(t, events.LeadClaimed, pooled)
	})
}
