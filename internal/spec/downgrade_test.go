package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestAllowDowngrade(t *testing.T) {
	const head = "name: rollback-3-7-0\ntarget: {version: 3.7.0}\nstrategy: {preset: emergency}\n"
	tests := []struct {
		name    string
		src     string
		want    bool
		wantErr string // the full error, when Parse fails
	}{
		{name: "absent: off", src: head},
		{name: "true", src: head + "allowDowngrade: true\n", want: true},
		{name: "false", src: head + "allowDowngrade: false\n"},
		{name: "null: off", src: head + "allowDowngrade:\n"},
		{name: "not a bool", src: head + "allowDowngrade: yes please\n",
			wantErr: `r.yaml:4: allowDowngrade: must be true or false, got "yes please"`},
		{name: "a quoted bool is text", src: head + "allowDowngrade: \"true\"\n",
			wantErr: `r.yaml:4: allowDowngrade: must be true or false, got "true"`},
		{name: "a list", src: head + "allowDowngrade: [true]\n",
			wantErr: `r.yaml:4: allowDowngrade: must be true or false, got a list`},
		{name: "misspelt", src: head + "allowDowngrades: true\n",
			wantErr: `r.yaml:4: allowDowngrades: unknown field; did you mean "allowDowngrade"?`},
		{name: "misplaced under target", src: "name: r1\ntarget: {version: 3.7.0, allowDowngrade: true}\nstrategy: {preset: emergency}\n",
			wantErr: `r.yaml:2: target.allowDowngrade: unknown field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse("r.yaml", []byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.AllowDowngrade != tt.want {
				t.Fatalf("AllowDowngrade = %v, want %v", r.AllowDowngrade, tt.want)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			// Normalize keeps it as written (off unless set).
			r.Normalize()
			if r.AllowDowngrade != tt.want {
				t.Fatalf("Normalize changed AllowDowngrade to %v", r.AllowDowngrade)
			}

			// JSON (the workflow input) and YAML (the worker re-parses the
			// input as YAML) keep it, and leave it out when off.
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(b), `"allowDowngrade":true`); got != tt.want {
				t.Fatalf("JSON %s: allowDowngrade present = %v, want %v", b, got, tt.want)
			}
			if !tt.want && strings.Contains(string(b), "allowDowngrade") {
				t.Fatalf("JSON %s carries allowDowngrade while off", b)
			}
			var back Rollout
			if err := json.Unmarshal(b, &back); err != nil || back.AllowDowngrade != tt.want {
				t.Fatalf("JSON round trip: %v, AllowDowngrade %v", err, back.AllowDowngrade)
			}
			y, err := yaml.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse("input", y)
			if err != nil || again.AllowDowngrade != tt.want {
				t.Fatalf("YAML round trip:\n%s\n%v, AllowDowngrade %v", y, err, again != nil && again.AllowDowngrade)
			}
		})
	}
}
