package composefile

import (
	"errors"
	"testing"
)

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":                 "plain",
		"$$topic":               "$topic",
		"${SET}":                "v",
		"$SET/x":                "v/x",
		"${UNSET:-d}":           "d",
		"${EMPTY:-d}":           "d",
		"${EMPTY-d}":            "",
		"${UNSET-d}":            "d",
		"${SET:-d}":             "v",
		"http://${UNSET:-a:1}/": "http://a:1/",
		"${UNSET}":              "",
		"${SET:?need it}":       "v",
	} {
		got, err := Interpolate(in, lookup)
		if err != nil || got != want {
			t.Errorf("Interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${UNSET:?set it}", "${EMPTY:?set it}", "${UNSET?set it}"} {
		_, err := Interpolate(in, lookup)
		var re *RequiredError
		if !errors.As(err, &re) {
			t.Errorf("Interpolate(%q): %v, want a RequiredError", in, err)
		}
	}
}

func TestScripts(t *testing.T) {
	topics, parts, err := Topics("set -eu\nfor topic in b a c; do\n  kafka-topics.sh --create --topic \"$topic\" --partitions 12\ndone\n")
	if err != nil || parts != 12 || len(topics) != 3 || topics[0] != "a" {
		t.Fatalf("Topics: %v %d %v", topics, parts, err)
	}
	attrs, ns := SearchAttributes("temporal operator search-attribute create --namespace default \\\n --name A --type Keyword \\\n --name B --type Bool")
	if ns != "default" || attrs["A"] != "Keyword" || attrs["B"] != "Bool" || len(attrs) != 2 {
		t.Fatalf("SearchAttributes: %v %q", attrs, ns)
	}
}
