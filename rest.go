package lightning

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxRequestBody bounds REST request bodies; the largest valid request (an
// invoice, or a 1024-byte memo) is far smaller.
const maxRequestBody = 64 << 10

// restPrefix starts the last segments of every REST path.
const restPrefix = "/v1/lightning/"

// jsonCodec writes JSON exactly as grpc-gateway's default does: zero
// values emitted, int64 as strings.
var jsonCodec = &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}

// jsonRequest decodes request bodies like grpc-gateway (int64 as number or
// string, unknown fields ignored) but, stricter, refuses anything after
// the JSON object.
var jsonRequest = protojson.UnmarshalOptions{DiscardUnknown: true}

// restMethod is one REST endpoint: a request message and the call.
type restMethod struct {
	newRequest func() proto.Message
	call       func(context.Context, proto.Message) (proto.Message, error)
}

// restCall adapts a typed service method to a restMethod.
func restCall[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](call func(context.Context, PReq) (Resp, error)) restMethod {
	return restMethod{
		newRequest: func() proto.Message { return PReq(new(Req)) },
		call: func(ctx context.Context, req proto.Message) (proto.Message, error) {
			return call(ctx, req.(PReq))
		},
	}
}

// restMethods maps the last path segment to its endpoint.
func (s *service) restMethods() map[string]restMethod {
	return map[string]restMethod{
		"generateinvoice": restCall(s.GenerateInvoice),
		"payinvoice":      restCall(s.PayInvoice),
		"checkinvoice":    restCall(s.CheckInvoice),
		"keysend":         restCall(s.Keysend),
	}
}

// serveREST answers POST <any prefix>/v1/lightning/<method>.
func (h *Handler) serveREST(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndex(r.URL.Path, restPrefix)
	if i < 0 {
		writeError(w, http.StatusNotFound, status.Error(codes.NotFound, "not found: the Lightning API lives at /v1/lightning/<method>"))
		return
	}
	method, ok := h.rest[r.URL.Path[i+len(restPrefix):]]
	if !ok {
		writeError(w, http.StatusNotFound, status.Error(codes.NotFound, "not found: methods are generateinvoice, payinvoice, checkinvoice and keysend"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, status.Error(codes.Unimplemented, "method not allowed: use POST"))
		return
	}
	req := method.newRequest()
	if httpStatus, err := readRequest(w, r, req); err != nil {
		writeError(w, httpStatus, err)
		return
	}
	resp, err := method.call(r.Context(), req)
	if err != nil {
		writeError(w, 0, err)
		return
	}
	body, err := jsonCodec.Marshal(resp)
	if err != nil {
		writeError(w, 0, status.Errorf(codes.Internal, "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// readRequest decodes a JSON body into req; an empty body is an empty
// request, as with grpc-gateway. On error it returns the HTTP status to
// answer with, or 0 for the one that matches the error's code.
func readRequest(w http.ResponseWriter, r *http.Request, req proto.Message) (int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge, status.Errorf(codes.InvalidArgument, "request body is larger than %d bytes", maxRequestBody)
	}
	if err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return 0, nil
	}
	if err := jsonRequest.Unmarshal(body, req); err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "invalid JSON request: %v", err)
	}
	return 0, nil
}

// writeError writes err in grpc-gateway's shape, {"code", "message",
// "details"}, with the HTTP status that matches the code unless httpStatus
// is given.
func writeError(w http.ResponseWriter, httpStatus int, err error) {
	st := status.Convert(err)
	// Messages may quote client input; JSON must be valid UTF-8.
	if msg := st.Message(); !utf8.ValidString(msg) {
		st = status.New(st.Code(), strings.ToValidUTF8(msg, "\uFFFD"))
	}
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}
	if st.Code() == codes.Unavailable {
		w.Header().Set("Retry-After", "5")
	}
	body, mErr := jsonCodec.Marshal(st.Proto())
	if mErr != nil {
		body = []byte(fmt.Sprintf(`{"code":%d,"message":"error","details":[]}`, st.Code()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}
