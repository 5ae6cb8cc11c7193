package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

var want = []fleet.Cluster{
	{ID: "lkc-1", Product: "kafka", Cloud: "aws", Region: "us-east-1", Environment: "prod", Customer: "acme",
		Tier: "dedicated", Version: "3.6.1", Brokers: 3, Generation: 7, Labels: map[string]string{"team": "payments"},
		Window: &fleet.Window{Days: []string{"sat", "sun"}, Start: "02:00", Duration: "4h", TimeZone: "Europe/Berlin"}},
	{ID: "lcc-2", Product: "connect", Cloud: "gcp", Region: "us-central1", Environment: "internal", Customer: "confluent",
		Tier: "standard", Version: "3.7.0", Brokers: 1},
}

const yamlList = `- id: lkc-1
  product: kafka
  cloud: aws
  region: us-east-1
  environment: prod
  customer: acme
  tier: dedicated
  version: 3.6.1
  brokers: 3
  generation: 7
  labels: {team: payments}
  maintenanceWindow: {days: [sat, sun], start: "02:00", duration: 4h, timeZone: Europe/Berlin}
  extra: ignored
- {id: lcc-2, product: connect, cloud: gcp, region: us-central1, environment: internal, customer: confluent, tier: standard, version: 3.7.0, brokers: 1}
`

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"yaml list", yamlList},
		{"yaml mapping", "clusters:\n" + indent(yamlList)},
		{"yaml flow mapping", `{clusters: [{id: lkc-1, product: kafka, cloud: aws, region: us-east-1, environment: prod, customer: acme, tier: dedicated, version: 3.6.1, brokers: 3, generation: 7, labels: {team: payments}, maintenanceWindow: {days: [sat, sun], start: "02:00", duration: 4h, timeZone: Europe/Berlin}}, {id: lcc-2, product: connect, cloud: gcp, region: us-central1, environment: internal, customer: confluent, tier: standard, version: 3.7.0, brokers: 1}]}`},
		{"json list", jsonOf(t, want)},
		{"json object", jsonOf(t, map[string]any{"clusters": want, "generatedAt": "now"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"invalid cluster names its index", `[{"id":"a","product":"kafka","cloud":"aws","environment":"prod","version":"1","brokers":1},{"id":"b","product":"redis"}]`,
			`clusters[1]: cluster b: unknown product "redis"`},
		{"duplicate ids", `[{"id":"a","product":"kafka","cloud":"aws","environment":"prod","version":"1","brokers":1},{"id":"a","product":"kafka","cloud":"aws","environment":"prod","version":"1","brokers":1}]`,
			`clusters[1]: duplicate id "a" (also clusters[0])`},
		{"missing id", "- product: kafka\n", `clusters[0]: cluster: id is empty`},
		{"json type error has a line", "[\n{\"id\": 5}]", `JSON line 2: json: cannot unmarshal number into Go struct field `}, // the field's name is spelt differently across Go releases
		{"object without clusters", `{"items": []}`, `want a list of clusters or an object with a "clusters" list`},
		{"yaml mapping without clusters", "items: []\n", `want a list of clusters or a mapping with a "clusters" list`},
		{"scalar", "hello\n", `want a list of clusters or a mapping with a "clusters" list`},
		{"empty", "", `empty inventory document`},
		{"yaml syntax", "- id: [a\n", `yaml: line 1: did not find expected ',' or ']'`},
		{"json null", "null", `want a list of clusters or a mapping with a "clusters" list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateListsManyFailures(t *testing.T) {
	cs := make([]fleet.Cluster, 13)
	err := Validate(cs)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 11 || lines[0] != "clusters[0]: cluster: id is empty" || lines[10] != "and 3 more invalid clusters" {
		t.Fatalf("Validate:\n%s", err)
	}
	if Validate(nil) != nil || Validate(want) != nil {
		t.Fatal("valid inventories rejected")
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	y := filepath.Join(dir, "fleet.yaml")
	j := filepath.Join(dir, "fleet.json")
	os.WriteFile(y, []byte(yamlList), 0o600)
	os.WriteFile(j, []byte(jsonOf(t, want)), 0o600)
	for _, ref := range []string{y, j, "file://" + j} {
		src, err := Open(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.List(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v", ref, got)
		}
	}
	_, err := File(filepath.Join(dir, "missing.yaml")).List(context.Background())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("- id: x\n  product: kafka\n"), 0o600)
	_, err = File(bad).List(context.Background())
	if err == nil || err.Error() != "inventory "+bad+": clusters[0]: cluster x: unknown cloud \"\"" {
		t.Fatalf("bad file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := File(y).List(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/list", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(want)
	})
	mux.HandleFunc("/object", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"clusters": want})
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error": "inventory is rebuilding",`+"\n"+`"retryAfter": 30}`)
	})
	mux.HandleFunc("/huge-error", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, strings.Repeat("x", 2000))
	})
	mux.HandleFunc("/empty-error", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	})
	mux.HandleFunc("/invalid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[{"id": "a", "product": "kafka", "cloud": "aws", "environment": "staging", "version": "1", "brokers": 1}]`)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html>oops</html>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/list", "/object"} {
		src, err := Open(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := src.List(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v", path, got)
		}
	}

	tests := []struct{ path, want string }{
		{"/down", `inventory ` + srv.URL + `/down: 503 Service Unavailable: {"error": "inventory is rebuilding", "retryAfter": 30}`},
		{"/huge-error", `inventory ` + srv.URL + `/huge-error: 500 Internal Server Error: ` + strings.Repeat("x", 512) + `...`},
		{"/empty-error", `inventory ` + srv.URL + `/empty-error: 403 Forbidden: (empty body)`},
		{"/invalid", `inventory ` + srv.URL + `/invalid: clusters[0]: cluster a: unknown environment "staging"`},
		{"/html", `inventory ` + srv.URL + `/html: JSON line 1: invalid character '<' looking for beginning of value`},
	}
	for _, tt := range tests {
		_, err := HTTP(srv.URL+tt.path, srv.Client()).List(context.Background())
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.path, err, tt.want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := HTTP(srv.URL+"/list", nil).List(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		ref     string
		kind    string
		wantErr string
	}{
		{"http://127.0.0.1:8089/v1/clusters", "*inventory.httpSource", ""},
		{"HTTPS://inventory.example.com/v1/clusters", "*inventory.httpSource", ""},
		{"fleet.yaml", "*inventory.indexedFile", ""},
		{"  ./fleet.json ", "*inventory.indexedFile", ""},
		{"file:///tmp/fleet.json", "*inventory.indexedFile", ""},
		{"", "", "empty reference"},
		{"http://", "", "has no host"},
		{"http://a b/", "", "invalid character"},
	}
	for _, tt := range tests {
		src, err := Open(tt.ref)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(%q) error = %v, want %q", tt.ref, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tt.ref, err)
			continue
		}
		if got := fmt.Sprintf("%T", src); got != tt.kind {
			t.Errorf("Open(%q) = %s, want %s", tt.ref, got, tt.kind)
		}
	}
	if src, _ := Open("file:///tmp/fleet.json"); fmt.Sprint(src) != "/tmp/fleet.json" {
		t.Errorf("file:// not stripped: %v", src)
	}
}

func TestStatic(t *testing.T) {
	src := Static(want)
	got, err := src.List(context.Background())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Static: %v %v", got, err)
	}
	got[0].ID = "mutated"
	if again, _ := src.List(context.Background()); again[0].ID != "lkc-1" {
		t.Fatal("Static shares its slice")
	}
	if _, err := Static([]fleet.Cluster{{}}).List(context.Background()); err == nil {
		t.Fatal("Static does not validate")
	}
}

// An inventory URL may carry a token: errors and String never show it.
func TestErrorsDoNotShowTheURLsToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer srv.Close()
	secretURL := srv.URL + "/v1/clusters?env=prod&token=tok-SECRET"
	src, err := Open(secretURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.List(context.Background())
	if err == nil || strings.Contains(err.Error(), "tok-SECRET") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("List error = %v", err)
	}
	if s := src.(fmt.Stringer).String(); strings.Contains(s, "tok-SECRET") {
		t.Fatalf("String = %q", s)
	}

	// Unreachable: the HTTP client's error quotes the URL.
	srv.Close()
	_, err = src.List(context.Background())
	if err == nil || strings.Contains(err.Error(), "tok-SECRET") {
		t.Fatalf("List error = %v", err)
	}

	// Malformed: url.Parse's error quotes it too.
	_, err = Open("https://alice:pw-SECRET@inv.example.com:port/v1?access_token=tok-SECRET")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("Open error = %v", err)
	}
}

// A file inventory is parsed once per change of the file, and looked up by
// ID through its index.
func TestIndexedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	write := func(version string) {
		t.Helper()
		doc := fmt.Sprintf(`
- {id: k-1, product: kafka, cloud: aws, region: us-east-1, environment: prod, customer: acme, tier: basic, version: %s, brokers: 3}
- {id: k-2, product: kafka, cloud: aws, region: us-east-1, environment: prod, customer: acme, tier: basic, version: 3.6.0, brokers: 3}
`, version)
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	}
	write("3.6.0")
	src, err := Open(path)
	require.NoError(t, err)
	got, err := Find(context.Background(), src, []string{"k-2", "nope"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "k-2", got[0].ID)

	f := src.(*indexedFile)
	f.mu.Lock()
	first := &f.all[0]
	f.mu.Unlock()
	_, err = src.List(context.Background())
	require.NoError(t, err)
	f.mu.Lock()
	require.Same(t, first, &f.all[0], "an unchanged file is not parsed again")
	f.mu.Unlock()

	// A change (another size) is read again.
	write("3.7.10")
	got, err = Find(context.Background(), src, []string{"k-1"})
	require.NoError(t, err)
	require.Equal(t, "3.7.10", got[0].Version)

	// List hands out a copy: changing it changes nothing indexed.
	all, err := src.List(context.Background())
	require.NoError(t, err)
	all[0].Version = "9.9.9"
	got, err = Find(context.Background(), src, []string{"k-1"})
	require.NoError(t, err)
	require.Equal(t, "3.7.10", got[0].Version)
}
