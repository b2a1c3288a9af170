package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/language"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/observe"
	"github.com/shoalcrm/shoal/internal/store"
)

// problemTypeBase prefixes the code to make the problem's type URI.
const problemTypeBase = "https://shoal.dev/problems/"

// statusOf is the one table from domain error kinds to HTTP statuses.
var statusOf = map[apperr.Kind]int{
	apperr.Internal:             http.StatusInternalServerError,
	apperr.Invalid:              http.StatusBadRequest,
	apperr.Unauthenticated:      http.StatusUnauthorized,
	apperr.Forbidden:            http.StatusForbidden,
	apperr.NotFound:             http.StatusNotFound,
	apperr.Conflict:             http.StatusConflict,
	apperr.Gone:                 http.StatusGone,
	apperr.PreconditionFailed:   http.StatusPreconditionFailed,
	apperr.TooLarge:             http.StatusRequestEntityTooLarge,
	apperr.Unprocessable:        http.StatusUnprocessableEntity,
	apperr.PreconditionRequired: http.StatusPreconditionRequired,
	apperr.RateLimited:          http.StatusTooManyRequests,
	apperr.Unavailable:          http.StatusServiceUnavailable,
}

// message is a problem detail in the two languages Shoal speaks.
type message struct{ en, zh string }

// catalog gives the human detail for each stable code. A code missing here
// falls back to the domain error's own English message.
var catalog = map[string]message{
	"internal":              {"An unexpected error occurred; it has been logged.", "服务器内部错误，已记录。"},
	"not_found":             {"The resource does not exist or you may not see it.", "资源不存在或无权查看。"},
	"route_not_found":       {"No such endpoint.", "接口不存在。"},
	"method_not_allowed":    {"This endpoint does not support the method.", "该接口不支持此请求方法。"},
	"validation_failed":     {"The request does not match the API contract.", "请求不符合接口约定。"},
	"payload_too_large":     {"The request body is too large.", "请求体过大。"},
	"unavailable":           {"The service is temporarily unavailable.", "服务暂时不可用。"},
	"database_unavailable":  {"The database is unavailable; retry later.", "数据库暂时不可用，请稍后再试。"},
	"default_pool_required": {"A pool kind always has a default pool: make another pool the default instead.", "每类线索池必须有一个默认池：请先将其他线索池设为默认。"},
	"unauthorized":          {"Missing or invalid credentials.", "缺少或无效的身份凭证。"},
	"forbidden":             {"You may not perform this operation.", "无权执行此操作。"},
	"invalid_utf8":          {"The text is not valid UTF-8.", "文本不是有效的 UTF-8 编码。"},
	"insufficient_scope":    {"This API key lacks the scope the operation needs (see scopes).", "此 API 密钥缺少该操作所需的权限范围（见 scopes）。"},
	"rate_limited":          {"Too many requests; retry later.", "请求过于频繁，请稍后再试。"},
	"bad_request":           {"The request is malformed.", "请求格式错误。"},
	"unsupported_media":     {"Unsupported content type.", "不支持的内容类型。"},
	"precondition_required": {"This update requires an If-Match header with the record's ETag.", "此更新需要携带记录 ETag 的 If-Match 请求头。"},
	"precondition_failed":   {"The record has changed since you read it; fetch it again.", "记录已被修改，请重新获取后再试。"},
	"invalid_cursor":        {"The cursor is not one this server issued.", "分页游标无效。"},
	"invalid_credentials":   {"Email or password is wrong.", "邮箱或密码错误。"},
	"invalid_refresh_token": {"The refresh token is invalid or expired.", "刷新令牌无效或已过期。"},
	"refresh_token_reused":  {"The refresh token was already used; the session has been revoked.", "刷新令牌已被使用，会话已被撤销。"},
	"login_throttled":       {"Too many failed login attempts; retry later.", "登录失败次数过多，请稍后再试。"},
	"server_busy":           {"Too many password checks are in progress; retry shortly.", "服务器繁忙（密码校验请求过多），请稍后重试。"},
	"weak_password":         {"The password is too short, too long, too common, or the same as the email.", "密码过短、过长、过于常见或与邮箱相同。"},
	"email_taken":           {"A user with this email already exists.", "该邮箱已被使用。"},
	"last_admin":            {"This would leave no active admin.", "此操作将导致没有可用的管理员。"},
	"team_cycle":            {"A team cannot be moved under itself or its descendants.", "团队不能移动到自身或其下级团队之下。"},
	"tag_exists":            {"A tag with this name already exists.", "已存在同名标签。"},
	"duplicate":             {"A record with the same name, phone or email already exists.", "已存在相同名称、电话或邮箱的记录（撞单）。"},
	"not_record_owner":      {"Only the owner, his supervisor or an admin may change this record.", "只有负责人、其主管或管理员可以修改此记录。"},
	"pool_not_allowed":      {"You may not create records in this pool.", "无权在此公海/线索池中创建记录。"},
	"already_owned":         {"The record already has an owner.", "该记录已有负责人。"},
	"cap_exceeded":          {"You have reached your cap of records of this kind.", "已达到保有量上限。"},
	"daily_limit_reached":   {"You have reached today's claim limit for this pool.", "已达到今日领取上限。"},
	"claim_cooldown":        {"You returned or lost this record recently and may not claim it again yet.", "您最近退回或被回收了该记录，暂不能再次领取。"},
	"record_frozen":         {"The record is frozen.", "该记录已冻结。"},
	"record_invalid":        {"The record is invalid or converted.", "该记录已无效或已转化。"},
	"frozen_limit_reached":  {"You hold as many frozen records as you may.", "冻结数量已达上限。"},
	"not_owned":             {"The record has no owner.", "该记录当前无负责人。"},
	"not_frozen":            {"The record is not frozen.", "该记录未冻结。"},
	"not_invalid":           {"The record is not invalid.", "该记录不是无效状态。"},
	"freeze_too_long":       {"The freeze would last longer than the pool allows.", "冻结时间超过了线索池允许的上限。"},
	"freeze_in_past":        {"The freeze must end in the future.", "冻结结束时间必须晚于当前时间。"},
	"target_inactive":       {"The target user is not active.", "目标用户已停用。"},
	"user_owns_records":     {"The user still owns leads or customers: hand them over (handover) or deactivate with force.", "该用户仍负责线索或客户：请先交接（handover）或使用 force 强制停用。"},
	"pool_not_managed":      {"You do not manage this pool.", "您不是该公海/线索池的管理员。"},
	"target_out_of_scope":   {"The target user is outside your scope.", "目标用户不在您的管理范围内。"},
	"api_key_not_bound":     {"Only an API key bound to the record's pool may assign or transfer it.", "只有绑定到该记录所在线索池的 API 密钥才能分配或转移它。"},
	"not_pool_member":       {"You are not a member of this pool.", "您不是该线索池的成员。"},
	"wrong_pool":            {"The record is not in a pool you manage.", "该记录不在您管理的线索池中。"},
	"claim_request_pending": {"Your claim awaits a pool manager's approval.", "领取申请待线索池管理员审批。"},
	"merged_into":           {"This record was merged into another; use the survivor named by survivorId.", "该记录已被合并到另一条记录，请使用 survivorId 指向的保留记录。"},
	"merge_converted":       {"A converted lead can be neither merged nor survive a merge; merge the customers instead.", "已转化的线索不能被合并，也不能作为保留记录；请改为合并客户。"},
	"request_not_pending":   {"The claim request was already decided.", "该领取申请已处理。"},
	"not_acceptable":        {"None of the media types in Accept is available here: ask for application/json, text/csv or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.", "无法提供 Accept 所要求的格式：请使用 application/json、text/csv 或 application/vnd.openxmlformats-officedocument.spreadsheetml.sheet。"},

	"stage_in_use":         {"Opportunities are at this stage; retire it instead of removing it.", "仍有商机处于该阶段，请改为停用该阶段。"},
	"stage_not_open":       {"The stage is retired, or not an open stage.", "该阶段已停用，或不是进行中的阶段。"},
	"not_applicable":       {"A field was given that does not apply here (poolId on a products import).", "给出的字段不适用于此处（产品导入不接受 poolId）。"},
	"lost_reason_required": {"Moving to a lost stage needs lostReason.", "转入输单阶段需要填写输单原因（lostReason）。"},
	"pipeline_name_taken":  {"Another pipeline has this name.", "已存在同名销售流程。"},
	"sku_taken":            {"Another product has this SKU.", "已存在相同产品编码（SKU）的产品。"},

	// Quotes and approvals (docs/quotes.md).
	"invalid_quote_status": {"The quote's status does not allow this operation (see quoteStatus).", "报价单当前状态（见 quoteStatus）不允许此操作。"},
	"quote_needs_approval": {"The quote must be approved before it is sent: submit it (blockingLines names the lines that need approval).", "报价单须经审批后才能发送：请先提交审批（blockingLines 列出需审批的明细行）。"},
	"quote_expired":        {"The quote's validity date has passed.", "报价单已过有效期。"},
	"not_approver":         {"You are not an approver of this request's current step.", "您不是该审批当前步骤的审批人。"},
	"approval_not_pending": {"The approval request is decided already.", "该审批已处理完毕。"},
	// Document templates (internal/documents): the detail goes on with
	// the template error itself (causeInDetail).
	"template_invalid": {"The template does not parse or does not render the sample document", "模板无法解析，或无法用示例数据渲染"},

	// Webhooks (docs/webhooks.md).
	"webhook_target_forbidden": {"Webhooks may not send to this address (loopback, private, link-local or metadata).", "Webhook 不能发送到此地址（本机回环、内网、链路本地或云元数据地址）。"},
	"webhook_inactive":         {"The webhook is disabled; re-enable it first.", "该 Webhook 已停用，请先重新启用。"},

	// Idempotency-Key (docs/idempotency.md).
	"idempotency_key_in_use":   {"A request with this Idempotency-Key is still in progress; retry later.", "使用此幂等键（Idempotency-Key）的请求仍在处理中，请稍后重试。"},
	"idempotency_key_mismatch": {"This Idempotency-Key was already used for a different request.", "此幂等键（Idempotency-Key）已用于另一个不同的请求。"},
}

// causeInDetail are the codes whose detail goes on with the domain error's
// own message: what exactly is wrong, which the caller needs to fix it
// (a template error and its line). The message is never a secret.
var causeInDetail = map[string]bool{"template_invalid": true}

// problem is an RFC 9457 problem details body with Shoal's members.
type problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	Code      string              `json:"code"`
	RequestID string              `json:"requestId,omitempty"`
	Errors    []apperr.FieldError `json:"errors,omitempty"`
	extra     map[string]any
}

func (p problem) MarshalJSON() ([]byte, error) {
	type plain problem
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

var supported = language.NewMatcher([]language.Tag{language.English, language.SimplifiedChinese})

// wantsChinese reports whether Accept-Language prefers Chinese.
func wantsChinese(r *http.Request) bool {
	h := r.Header.Get("Accept-Language")
	if h == "" {
		return false
	}
	tags, _, err := language.ParseAcceptLanguage(h)
	if err != nil || len(tags) == 0 {
		return false
	}
	_, idx, _ := supported.Match(tags...)
	return idx == 1
}

// localized returns the detail for code in the caller's language.
func localized(r *http.Request, code, fallback string) string {
	m, ok := catalog[code]
	if !ok {
		return fallback
	}
	if wantsChinese(r) {
		return m.zh
	}
	if fallback != "" && m.en == "" {
		return fallback
	}
	return m.en
}

// detailOf is e's detail in the caller's language, with the cause for the
// codes of causeInDetail.
func detailOf(r *http.Request, e *apperr.Error) string {
	d := localized(r, e.Code, e.Message)
	if causeInDetail[e.Code] && e.Message != "" {
		sep := ": "
		if wantsChinese(r) {
			sep = "："
		}
		d += sep + e.Message
	}
	return d
}

// toAppErr turns whatever a handler or middleware returned into a domain
// error. Anything unrecognised is internal.
func toAppErr(err error) *apperr.Error {
	// echo's BodyLimit reader fails with this error when a body without a
	// Content-Length grows too large; it surfaces wrapped in whatever read
	// the body (the validator, the JSON decoder).
	if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
		return apperr.New(apperr.TooLarge, "payload_too_large", "request body too large")
	}
	if e, ok := apperr.As(err); ok {
		if e.Kind == apperr.Internal && store.Unavailable(err) {
			return errDatabaseUnavailable(err)
		}
		return e
	}
	if store.Unavailable(err) {
		return errDatabaseUnavailable(err)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if e, ok := apperr.As(he.Internal); ok {
			return e
		}
		switch he.Code {
		case http.StatusNotFound:
			return apperr.New(apperr.NotFound, "route_not_found", "no such endpoint")
		case http.StatusMethodNotAllowed:
			return &apperr.Error{Kind: apperr.Invalid, Code: "method_not_allowed", Message: "method not allowed"}
		case http.StatusRequestEntityTooLarge:
			return apperr.New(apperr.TooLarge, "payload_too_large", "request body too large")
		case http.StatusUnsupportedMediaType:
			return apperr.New(apperr.Invalid, "unsupported_media", "unsupported content type")
		case http.StatusBadRequest:
			return &apperr.Error{Kind: apperr.Invalid, Code: "bad_request", Message: fmt.Sprint(he.Message), Err: err}
		case http.StatusUnauthorized:
			return apperr.New(apperr.Unauthenticated, "unauthorized", "unauthorized")
		case http.StatusForbidden:
			return apperr.New(apperr.Forbidden, "forbidden", "forbidden")
		case http.StatusTooManyRequests:
			return apperr.New(apperr.RateLimited, "rate_limited", "too many requests")
		case http.StatusServiceUnavailable:
			return apperr.New(apperr.Unavailable, "unavailable", "service unavailable")
		}
		if he.Code >= 400 && he.Code < 500 {
			return &apperr.Error{Kind: apperr.Invalid, Code: "bad_request", Message: fmt.Sprint(he.Message), Err: err}
		}
	}
	return &apperr.Error{Kind: apperr.Internal, Code: "internal", Message: "internal error", Err: err}
}

func errDatabaseUnavailable(err error) *apperr.Error {
	return &apperr.Error{Kind: apperr.Unavailable, Code: "database_unavailable", Message: "database unavailable", Err: err}
}

// statusClientClosed is nginx's 499: the client went away before the
// answer. It is never sent (there is no one to send it to) but is what the
// access log and the metrics record, so that impatient clients do not look
// like server faults.
const statusClientClosed = 499

// clientGone reports whether err is only the echo of the client hanging up:
// the request's context is canceled (net/http does that when the
// connection closes) and the error is not a domain answer.
func clientGone(r *http.Request, err error, e *apperr.Error) bool {
	if !errors.Is(r.Context().Err(), context.Canceled) {
		return false
	}
	return errors.Is(err, context.Canceled) || e.Kind == apperr.Internal || e.Kind == apperr.Unavailable
}

// errorHandler renders every error as problem+json. It is echo's
// HTTPErrorHandler, so unknown routes, wrong methods, oversized bodies,
// validation failures, panics and domain errors all come out the same way.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := toAppErr(err)
	r := c.Request()
	if clientGone(r, err, e) {
		s.log.InfoContext(r.Context(), "client closed the request", slog.String("code", e.Code), slog.Any("error", err))
		c.Response().WriteHeader(statusClientClosed)
		return
	}
	status := statusOf[e.Kind]
	switch e.Code {
	case "method_not_allowed":
		status = http.StatusMethodNotAllowed
	case "unsupported_media":
		status = http.StatusUnsupportedMediaType
	case "not_acceptable":
		status = http.StatusNotAcceptable
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("code", e.Code), slog.Any("error", err))
	}
	p := problem{
		Type:      problemTypeBase + e.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detailOf(r, e),
		Instance:  r.URL.Path,
		Code:      e.Code,
		RequestID: observe.RequestID(r.Context()),
		Errors:    e.Fields,
		extra:     e.Extra,
	}
	h := c.Response().Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+999_999_999)/1_000_000_000)))
	}
	if e.Location != "" {
		h.Set("Location", e.Location)
	}
	if scopes, ok := e.Extra["scopes"].([]string); ok && e.Code == "insufficient_scope" {
		// RFC 6750: a key refused for a missing scope is told which, in
		// the challenge too, wherever the refusal was decided.
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, strings.Join(scopes, " ")))
	}
	if status == http.StatusUnauthorized {
		// RFC 9110 requires a challenge with every 401.
		h.Set("WWW-Authenticate", `Bearer realm="shoal"`)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if err := json.NewEncoder(c.Response()).Encode(p); err != nil {
		s.log.WarnContext(r.Context(), "write problem", slog.Any("error", err))
	}
}
