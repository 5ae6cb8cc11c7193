package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is what `fleet version` prints: the module version and the
// VCS stamp the go command put in the binary.
type versionInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
}

func buildVersion() versionInfo {
	v := versionInfo{Module: "github.com/fleet-rollout/fleet", Version: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.GoVersion = bi.GoVersion
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:               "version",
		Short:             "print the fleet CLI's version (module version and VCS revision)",
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(*cobra.Command, []string) error {
			v := buildVersion()
			if e.asJSON() {
				return writeJSON(e.stdout, v)
			}
			fmt.Fprintf(e.stdout, "fleet %s (%s)", v.Version, v.Module)
			if v.Revision != "" {
				fmt.Fprintf(e.stdout, " revision %s", v.Revision)
				if v.Modified {
					fmt.Fprint(e.stdout, "+modified")
				}
				if v.Time != "" {
					fmt.Fprintf(e.stdout, " %s", v.Time)
				}
			}
			fmt.Fprintf(e.stdout, " %s\n", v.GoVersion)
			return nil
		},
	}
}
