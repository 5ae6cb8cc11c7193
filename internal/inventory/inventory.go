// Package inventory lists the fleet from pluggable sources: a YAML or JSON
// file, or an HTTP endpoint serving JSON (the simulator's /v1/clusters, or a
// real CMDB). Every source validates each cluster it returns
// (fleet.Cluster.Validate) and rejects duplicate IDs, naming the failing
// index.
//
// Accepted documents, in a file or an HTTP body:
//
//	[ {"id": "lkc-1", "product": "kafka", ...}, ... ]      a list
//	{"clusters": [ ... ]}                                  an object
//
// and, in a file, the same shapes in YAML. Fields the fleet model does not
// know are ignored, so an inventory may carry more than the planner needs.
package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleet-rollout/fleet/internal/fleet"
	"github.com/fleet-rollout/fleet/internal/redact"
)

// Source lists the fleet.
type Source interface {
	List(ctx context.Context) ([]fleet.Cluster, error)
}

// MaxBody bounds an HTTP inventory response.
const MaxBody = 256 << 20

// DefaultClient is used by HTTP sources given a nil client.
var DefaultClient = &http.Client{Timeout: time.Minute}

// Open returns the source ref names: an http:// or https:// URL is an HTTP
// source (with DefaultClient), "file://PATH" or any other string a file.
// Nothing is read until List.
func Open(ref string) (Source, error) {
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		return nil, errors.New("inventory: empty reference: want an http(s) URL or a file path")
	case hasPrefixFold(ref, "http://") || hasPrefixFold(ref, "https://"):
		u, err := url.Parse(ref)
		if err != nil {
			// url.Parse's error quotes the URL, which may carry a token.
			return nil, redact.Error(fmt.Errorf("inventory: %w", err))
		}
		if u.Host == "" {
			return nil, fmt.Errorf("inventory: URL %q has no host", redact.URL(ref))
		}
		return HTTP(ref, nil), nil
	case hasPrefixFold(ref, "file://"):
		return Indexed(ref[len("file://"):]), nil
	}
	return Indexed(ref), nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// File is a source reading the YAML or JSON file at path on every List.
func File(path string) Source { return fileSource(path) }

type fileSource string

func (f fileSource) List(ctx context.Context) ([]fleet.Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	cs, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", string(f), err)
	}
	return cs, nil
}

func (f fileSource) String() string { return string(f) }

// HTTP is a source that GETs url and decodes a JSON list of clusters or an
// object with a "clusters" list. A non-2xx answer is an error carrying the
// status and the start of the body. A nil client means DefaultClient.
func HTTP(url string, client *http.Client) Source {
	if client == nil {
		client = DefaultClient
	}
	return &httpSource{url: url, client: client}
}

type httpSource struct {
	url    string
	client *http.Client
	// noLookup is set once the inventory answered that it has no lookup.
	noLookup atomic.Bool
}

// String is the URL with its credentials masked (see redact.URL).
func (h *httpSource) String() string { return redact.URL(h.url) }

func (h *httpSource) List(ctx context.Context) ([]fleet.Cluster, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("inventory: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		// The client's *url.Error quotes the URL (query included).
		return nil, redact.Error(fmt.Errorf("inventory: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		msg := strings.Join(strings.Fields(string(snippet)), " ")
		if len(snippet) == 512 {
			msg += "..."
		}
		if msg == "" {
			msg = "(empty body)"
		}
		return nil, fmt.Errorf("inventory %s: %s: %s", h.String(), resp.Status, msg)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("inventory %s: read body: %w", h.String(), err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("inventory %s: body larger than %d bytes", h.String(), MaxBody)
	}
	cs, err := decodeJSON(body)
	if err == nil {
		err = Validate(cs)
	}
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", h.String(), err)
	}
	return cs, nil
}

// Static is a source returning a copy of clusters (validated on List), for
// tests and embedding.
func Static(clusters []fleet.Cluster) Source { return staticSource(slices.Clone(clusters)) }

type staticSource []fleet.Cluster

func (s staticSource) List(ctx context.Context) ([]fleet.Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := Validate(s); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return slices.Clone([]fleet.Cluster(s)), nil
}

// Decode parses a YAML or JSON inventory document (a list of clusters or a
// mapping with a "clusters" list) and validates every cluster.
func Decode(data []byte) ([]fleet.Cluster, error) {
	trimmed := bytes.TrimSpace(data)
	var cs []fleet.Cluster
	var err error
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		cs, err = decodeJSON(data)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// Not JSON; perhaps YAML flow style: {clusters: [...]}.
			if ys, yerr := decodeYAML(data); yerr == nil {
				cs, err = ys, nil
			}
		}
	} else {
		cs, err = decodeYAML(data)
	}
	if err != nil {
		return nil, err
	}
	return cs, Validate(cs)
}

func decodeJSON(data []byte) ([]fleet.Cluster, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var doc struct {
			Clusters *[]fleet.Cluster `json:"clusters"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, jsonError(data, err)
		}
		if doc.Clusters == nil {
			return nil, errors.New(`want a list of clusters or an object with a "clusters" list`)
		}
		return *doc.Clusters, nil
	}
	var cs []fleet.Cluster
	if err := json.Unmarshal(data, &cs); err != nil {
		return nil, jsonError(data, err)
	}
	if cs == nil && !bytes.Equal(trimmed, []byte("[]")) {
		return nil, errors.New(`want a list of clusters or an object with a "clusters" list`)
	}
	return cs, nil
}

// jsonError adds the line of a JSON syntax or type error.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return fmt.Errorf("JSON: %w", err)
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	return fmt.Errorf("JSON line %d: %w", line, err)
}

func decodeYAML(data []byte) ([]fleet.Cluster, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if root.Kind == 0 {
		return nil, errors.New("empty inventory document")
	}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	var cs []fleet.Cluster
	switch n.Kind {
	case yaml.SequenceNode:
		if err := n.Decode(&cs); err != nil {
			return nil, err
		}
	case yaml.MappingNode:
		var doc struct {
			Clusters *[]fleet.Cluster `yaml:"clusters"`
		}
		if err := n.Decode(&doc); err != nil {
			return nil, err
		}
		if doc.Clusters == nil {
			return nil, errors.New(`want a list of clusters or a mapping with a "clusters" list`)
		}
		cs = *doc.Clusters
	default:
		return nil, errors.New(`want a list of clusters or a mapping with a "clusters" list`)
	}
	return cs, nil
}

// maxReported bounds how many invalid clusters one error lists.
const maxReported = 10

// Validate checks every cluster (fleet.Cluster.Validate) and that IDs are
// unique. The error names each failing index, up to ten of them.
func Validate(cs []fleet.Cluster) error {
	var errs []error
	bad := 0
	seen := make(map[string]int, len(cs))
	for i := range cs {
		err := cs[i].Validate()
		if err == nil {
			if j, dup := seen[cs[i].ID]; dup {
				err = fmt.Errorf("duplicate id %q (also clusters[%d])", cs[i].ID, j)
			} else {
				seen[cs[i].ID] = i
			}
		}
		if err != nil {
			bad++
			if bad <= maxReported {
				errs = append(errs, fmt.Errorf("clusters[%d]: %w", i, err))
			}
		}
	}
	if bad > maxReported {
		errs = append(errs, fmt.Errorf("and %d more invalid clusters", bad-maxReported))
	}
	return errors.Join(errs...)
}
