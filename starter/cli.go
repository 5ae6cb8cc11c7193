package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleet-rollout/fleet/workflows"
)

// runFunc runs a command with its positional arguments, once its flags are
// parsed.
type runFunc func(ctx context.Context, pos []string) error

// outputFormat is the value of -o/--output: text (the default) or json.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "FORMAT" }

func (o *outputFormat) Set(s string) error {
	switch s {
	case "text", "json":
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("%q is not an output format: want text or json", s)
}

// asJSON says the command should print JSON (-o json or --json).
func (e *env) asJSON() bool { return e.json || e.output == "json" }

// newRoot builds the command tree for e: one cobra command per entry of
// commands, plus completion and version.
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "fleet",
		Short:         "fleet drives fleet rollouts on Temporal",
		SilenceErrors: true,
		SilenceUsage:  true,
		// fleet deploy: did you mean ... (see unknownCommand)
		SuggestionsMinimumDistance: 2,
		Args:                       cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				printUsage(e.stdout)
				return usagef("", "no command given")
			}
			return unknownCommand(c, "", args[0])
		},
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			for _, name := range []string{"address", "namespace", "profile"} {
				if f := c.Flags().Lookup(name); f != nil && f.Changed && strings.TrimSpace(f.Value.String()) == "" {
					return usagef("", "flag --%s: empty value", name)
				}
			}
			return nil
		},
	}
	e.output = "text"
	pf := root.PersistentFlags()
	pf.StringVar(&e.global.Address, "address", "", "Temporal frontend `HOST:PORT` (over TEMPORAL_ADDRESS and the profile)")
	pf.StringVar(&e.global.Namespace, "namespace", "", "Temporal namespace `NS` (over TEMPORAL_NAMESPACE and the profile)")
	pf.StringVar(&e.global.Profile, "profile", "", "profile `NAME` of the temporal CLI's config file (over TEMPORAL_PROFILE)")
	pf.VarP(&e.output, "output", "o", "output `FORMAT`: text or json")
	pf.BoolVar(&e.json, "json", false, "print JSON (same as -o json)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("namespace", cobra.NoFileCompletions)
	_ = root.RegisterFlagCompletionFunc("address", cobra.NoFileCompletions)
	_ = root.RegisterFlagCompletionFunc("profile", cobra.NoFileCompletions)

	byCobra := map[*cobra.Command]*command{}
	for _, cmd := range commands {
		if cmd.name == "help" {
			continue
		}
		c := &cobra.Command{
			Use:       cmd.synopsis,
			Short:     cmd.summary,
			Long:      cmd.detail,
			Args:      cobra.ArbitraryArgs,
			ValidArgs: cmd.validArgs,
		}
		switch {
		case cmd.rolloutArg:
			c.ValidArgsFunction = e.completeRollouts
		case cmd.validArgs == nil:
			c.ValidArgsFunction = cobra.NoFileCompletions
		}
		runCmd := cmd.setup(e, cmd, c.Flags())
		c.RunE = func(c *cobra.Command, args []string) error { return runCmd(c.Context(), args) }
		if c.Flags().Lookup("file") != nil {
			_ = c.MarkFlagFilename("file", "yaml", "yml")
		}
		byCobra[c] = cmd
		root.AddCommand(c)
	}
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show this help, or a command's",
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			for _, sub := range root.Commands() {
				if sub.IsAvailableCommand() && len(args) == 0 {
					names = append(names, sub.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				printUsage(e.stdout)
				return nil
			case len(args) > 1:
				return usagef("help", "help: unexpected argument %q", args[1])
			case args[0] == "help":
				fmt.Fprintf(e.stdout, "Usage: fleet help [COMMAND]\n\nShow this help, or a command's.\n")
				return nil
			}
			sub, _, err := root.Find(args)
			if err != nil || sub == root {
				return unknownCommand(root, "help: ", args[0])
			}
			return sub.Help()
		},
	})
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		switch cmd := byCobra[c]; {
		case c == root:
			printUsage(e.stdout)
		case cmd != nil:
			printCommandUsage(e.stdout, cmd, c.LocalFlags())
		default: // completion, version
			fmt.Fprint(e.stdout, c.UsageString())
		}
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		name := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		msg, hint := flagError(c, err)
		if c == root {
			return &usageError{msg: msg, hint: hint}
		}
		return &usageError{cmd: name, msg: name + ": " + msg, hint: hint}
	})
	root.AddCommand(versionCommand(e))
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	return root
}

// flagError words pflag's errors as the CLI always has ("flag provided but
// not defined: -nope") and suggests the flag meant.
func flagError(c *cobra.Command, err error) (msg, hint string) {
	msg = err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		msg = "flag provided but not defined: -" + name
		if s := suggestFlag(c, name); s != "" {
			hint = "Did you mean --" + s + "?"
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: --"); ok {
		msg = "flag needs an argument: -" + name
	}
	if m := invalidFlagValue.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("invalid value %s for flag -%s: %s", m[1], m[2], m[3])
	}
	return msg, hint
}

// invalidFlagValue matches pflag's `invalid argument "x" for "-c, --name" flag: why`.
var invalidFlagValue = regexp.MustCompile(`^invalid argument (".*") for "(?:-\w, )?--([\w-]+)" flag: (.*)$`)

// suggestFlag returns the command's flag closest to a mistyped name, if
// one is close.
func suggestFlag(c *cobra.Command, name string) string {
	best, bestD := "", 3
	visit := func(f *pflag.Flag) {
		if d := levenshtein(strings.ToLower(name), f.Name); d < bestD || (d == bestD && f.Name < best) {
			best, bestD = f.Name, d
		}
	}
	c.LocalFlags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	if bestD > 2 {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// unknownCommand is the usage error for a command fleet does not have,
// with cobra's suggestions.
func unknownCommand(root *cobra.Command, prefix, name string) error {
	ue := &usageError{msg: fmt.Sprintf("%sunknown command %q", prefix, name)}
	if s := root.Root().SuggestionsFor(name); len(s) > 0 {
		ue.hint = "Did you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return ue
}

// legacyFlags rewrites the single-dash long flags the CLI has always
// accepted (-reason R, -json) into pflag's --reason R, --json; "--" ends
// the flags.
func legacyFlags(root *cobra.Command, args []string) []string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		c = root
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && (c.Flags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil) {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// run runs the command line args (without the program name).
func run(ctx context.Context, args []string, e *env) error {
	root := newRoot(e)
	root.SetArgs(legacyFlags(root, args))
	return root.ExecuteContext(ctx)
}

func printCommandUsage(w io.Writer, cmd *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: fleet %s\n", cmd.synopsis)
	if cmd.alt != "" {
		fmt.Fprintf(w, "       fleet %s\n", cmd.alt)
	}
	for _, m := range cmd.more {
		fmt.Fprintf(w, "       fleet %s\n", m)
	}
	fmt.Fprintf(w, "\n%s.\n", upperFirst(cmd.summary))
	if cmd.detail != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.detail)
	}
	if fs == nil {
		return
	}
	var flags strings.Builder
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Hidden {
			return
		}
		arg, usage := pflag.UnquoteUsage(f)
		switch arg {
		case "string":
			arg = strings.ToUpper(f.Name)
		case "bool":
			arg = ""
		}
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		if f.Shorthand != "" {
			short := "-" + f.Shorthand
			if arg != "" {
				short += " " + arg
			}
			left = short + ", " + left
		}
		fmt.Fprintf(&flags, "  %-22s %s\n", left, usage)
	})
	if flags.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
	}
	fmt.Fprint(w, "\nGlobal flags: --address HOST:PORT, --namespace NS, --profile NAME, -o/--output text|json, --json\n"+
		"(fleet help lists them and the exit codes).\n")
}

// actionOutput is what an accepted action prints with -o json.
type actionOutput struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	workflows.ActionResult
}

// printAction reports an accepted action: a line, or its result as JSON.
func (e *env) printAction(action, id string, res workflows.ActionResult) error {
	if e.asJSON() {
		return writeJSON(e.stdout, actionOutput{ID: workflows.RolloutID(workflows.RolloutName(id)), Action: action, ActionResult: res})
	}
	renderAction(e.stdout, id, res)
	return nil
}

// completeRollouts completes a rollout argument with the names of running
// and recently closed rollouts, asking Temporal briefly; nothing when it
// does not answer.
func (e *env) completeRollouts(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	api, _, closeFn, err := e.dial(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer closeFn()
	list, err := api.List(ctx, true)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]cobra.Completion, 0, len(list))
	for _, s := range list {
		names = append(names, cobra.CompletionWithDesc(s.Name, string(s.Status)))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
