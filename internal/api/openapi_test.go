package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"mailout/internal/api"
)

const specPath = "../../api/openapi.yaml"

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// spec loads api/openapi.yaml once and checks that it is a valid
// OpenAPI document.
func spec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		specDoc, specErr = openapi3.NewLoader().LoadFromFile(specPath)
		if specErr == nil {
			specErr = specDoc.Validate(context.Background())
		}
		if specErr == nil {
			specRouter, specErr = legacy.NewRouter(specDoc)
		}
	})
	if specErr != nil {
		t.Fatalf("%s: %v", specPath, specErr)
	}
	return specDoc, specRouter
}

// specCheck is the test client's transport: every answer of every test
// of the package is checked against the schema and the statuses that
// api/openapi.yaml documents for its route.
type specCheck struct {
	t      *testing.T
	router routers.Router
}

func (s *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		// Only a path or method the API does not serve may be
		// undocumented, and it is answered so (or refused for lack of a
		// token before the router is consulted).
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusUnauthorized {
			s.t.Errorf("%s %s: not in the spec, yet answered %d", req.Method, req.URL.Path, resp.StatusCode)
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		s.t.Errorf("%s %s answered %d, not as api/openapi.yaml says: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	return resp, nil
}

// The spec and the server agree both ways: every documented route is
// served (a request reaches a handler: not 404 no-route, not 405), and
// every served route is documented.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	doc, _ := spec(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, pattern := range api.Routes() {
		if !documented[pattern] {
			t.Errorf("%s is served but not in %s", pattern, specPath)
		}
		delete(documented, pattern)
	}

	// Each documented route answered by the real handler, with a
	// campaign and a list that exist.
	e := newEnv(t, api.Config{})
	var c api.Created
	e.do("POST", "/api/v1/campaigns", sandboxCampaign("one", "email,first_name\na@example.org,A\n")).into(t, &c)
	e.do("POST", "/api/v1/lists", map[string]any{"name": "one"})
	h := api.New(e.cfg)
	param := regexp.MustCompile(`\{[a-z]+\}`)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			req := httptest.NewRequest(method, param.ReplaceAllString(path, "1"), strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+e.token)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			noRoute := rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), "no route")
			if noRoute || rec.Code == http.StatusMethodNotAllowed {
				t.Errorf("%s %s is documented but answered %d: %s", method, path, rec.Code, rec.Body)
			}
		}
	}
	// Undocumented: everything Routes did not serve.
	if len(documented) > 0 {
		t.Errorf("documented but not served: %v", slices.Sorted(func(yield func(string) bool) {
			for k := range documented {
				if !yield(k) {
					return
				}
			}
		}))
	}
}
