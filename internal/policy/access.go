package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fleet-rollout/fleet/internal/fleet"
)

// Role is an access level. Each role can do everything the roles below it
// can:
//
//	viewer    reads: plans, status, history
//	operator  starts, pauses, resumes, aborts and paces rollouts
//	approver  approves gates (plan and phase approvals), and all of the above
//	admin     freezes and unfreezes the fleet, forces rollouts through
//	          protected clusters, approves in every environment, and all of
//	          the above
type Role string

// Roles, lowest first.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
)

// Roles lists every role, lowest first.
var Roles = []Role{RoleViewer, RoleOperator, RoleApprover, RoleAdmin}

// rank orders roles; an unknown role ranks below viewer and may do nothing.
func (r Role) rank() int {
	return slices.Index(Roles, r) + 1
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r includes the rights of need.
func (r Role) AtLeast(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

// Action is something an identity does to a rollout or the fleet.
type Action string

// Actions.
const (
	ActionView           Action = "view"
	ActionStart          Action = "start"
	ActionPause          Action = "pause"
	ActionResume         Action = "resume"
	ActionAbort          Action = "abort"
	ActionPace           Action = "pace"
	ActionApprove        Action = "approve"
	ActionFreeze         Action = "freeze"
	ActionUnfreeze       Action = "unfreeze"
	ActionForceProtected Action = "force-protected"
)

// actionRoles is the least role each action needs.
var actionRoles = map[Action]Role{
	ActionView:           RoleViewer,
	ActionStart:          RoleOperator,
	ActionPause:          RoleOperator,
	ActionResume:         RoleOperator,
	ActionAbort:          RoleOperator,
	ActionPace:           RoleOperator,
	ActionApprove:        RoleApprover,
	ActionFreeze:         RoleAdmin,
	ActionUnfreeze:       RoleAdmin,
	ActionForceProtected: RoleAdmin,
}

// Actions lists every action, in the order of the constants.
var Actions = []Action{ActionView, ActionStart, ActionPause, ActionResume, ActionAbort, ActionPace,
	ActionApprove, ActionFreeze, ActionUnfreeze, ActionForceProtected}

// Needs returns the least role that may take the action; ok is false for
// an unknown action.
func (a Action) Needs() (role Role, ok bool) {
	role, ok = actionRoles[a]
	return role, ok
}

// Access maps identities to roles. Identities are matched exactly (case
// included): "alice", "slack:U024BE7LH".
type Access struct {
	// Roles gives each listed identity its roles; the highest one counts.
	Roles map[string][]Role `json:"roles,omitempty" yaml:"roles,omitempty"`
	// Approvers optionally restricts approval per environment: when an
	// environment has a list, only the identities on it (holding at least
	// the approver role) and admins may approve there. An empty list
	// leaves approval there to admins. Environments without a list are
	// approved by anyone holding the approver role.
	Approvers map[string][]string `json:"approvers,omitempty" yaml:"approvers,omitempty"`
	// Default is the role of identities not in Roles (and of the empty
	// identity); empty means viewer.
	Default Role `json:"default,omitempty" yaml:"default,omitempty"`
	// Identity is IdentitySigned or IdentityAsserted: whether requests
	// must carry proofs. Parse sets IdentitySigned when the file is silent.
	Identity string `json:"identity,omitempty" yaml:"identity,omitempty"`
	// People are the humans: their keys and aliases, sorted by name.
	People []Person `json:"people,omitempty" yaml:"people,omitempty"`
	// Services sign for others (the worker, for verified Slack users).
	Services map[string]Service `json:"services,omitempty" yaml:"services,omitempty"`
}

// RoleOf returns the highest role identity holds: its listed roles, or the
// default role when it is not listed.
func (a *Access) RoleOf(identity string) Role {
	if a == nil {
		return RoleAdmin
	}
	best := Role("")
	if identity != "" {
		// Roles may name the person or any alias: the person holds the
		// highest role listed under any of their names.
		for _, name := range a.names(a.Person(identity)) {
			for _, r := range a.Roles[name] {
				if r.rank() > best.rank() {
					best = r
				}
			}
		}
	}
	if best != "" {
		return best
	}
	if a.Default == "" {
		return RoleViewer
	}
	return a.Default
}

// Identities returns the identities with listed roles, sorted.
func (a *Access) Identities() []string {
	if a == nil {
		return nil
	}
	return sortedKeys(a.Roles)
}

// ApproverEnvironments returns the environments with an approver list,
// sorted.
func (a *Access) ApproverEnvironments() []string {
	if a == nil {
		return nil
	}
	return sortedKeys(a.Approvers)
}

// ApproversFor returns env's approver list, sorted, and whether env has one.
func (a *Access) ApproversFor(env string) (ids []string, restricted bool) {
	if a == nil {
		return nil, false
	}
	ids, restricted = a.Approvers[env]
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids, restricted
}

// ErrDenied is matched by every *DeniedError (errors.Is).
var ErrDenied = errors.New("policy: action denied")

// DeniedError says why an identity may not take an action.
type DeniedError struct {
	Identity string
	Action   Action
	// Need is the least role the action needs.
	Need Role
	// Env is the environment the action was asked for ("" when none).
	Env string
	// Have is the role the identity holds.
	Have Role
	// Approvers is set when the identity holds the role but is not on
	// Env's approver list: the list, sorted.
	Approvers []string
	// NotListed reports that the denial is the approver list's.
	NotListed bool
}

// Error reads "bob holds viewer; approve in prod needs approver".
func (e *DeniedError) Error() string {
	who := e.Identity
	if who == "" {
		who = "(anonymous)"
	}
	what := string(e.Action)
	if e.Env != "" {
		what += " in " + e.Env
	}
	msg := fmt.Sprintf("%s holds %s; %s needs %s", who, e.Have, what, e.Need)
	if e.NotListed {
		list := "empty: only admins approve there"
		if len(e.Approvers) > 0 {
			list = strings.Join(e.Approvers, ", ")
		}
		msg += fmt.Sprintf(" and a place on the %s approver list (%s)", e.Env, list)
	}
	return msg
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Authorize returns nil when identity may take action in environment (the
// environment of the rollout, phase or cluster concerned; "" when none),
// else a *DeniedError naming the role needed. An unknown action is an
// error even without a policy. A nil Config, or one without an access
// section, allows every action: access control is not configured.
//
// Approve needs the approver role and, when the environment has an
// approver list, a place on it; admins may approve everywhere. Other
// actions ignore the environment. The two-person rule is separate: see
// TwoPersonRule.
func (cfg *Config) Authorize(identity string, action Action, environment string) error {
	need, ok := action.Needs()
	if !ok {
		return fmt.Errorf("policy: unknown action %q", action)
	}
	if cfg == nil || cfg.Access == nil {
		return nil
	}
	a := cfg.Access
	have := a.RoleOf(identity)
	deny := &DeniedError{Identity: identity, Action: action, Need: need, Env: environment, Have: have}
	if !have.AtLeast(need) {
		return deny
	}
	if action == ActionApprove && have != RoleAdmin {
		if ids, restricted := a.ApproversFor(environment); restricted && (identity == "" || !a.listed(ids, identity)) {
			deny.Approvers, deny.NotListed = ids, true
			return deny
		}
	}
	return nil
}

// listed reports whether ids names identity's person under any name.
func (a *Access) listed(ids []string, identity string) bool {
	person := a.Person(identity)
	return slices.ContainsFunc(ids, func(id string) bool { return a.Person(id) == person })
}

// ErrSelfApproval is matched by TwoPersonRule's error (errors.Is).
var ErrSelfApproval = errors.New("two-person rule")

// TwoPersonRule returns an error when approver may not approve a rollout
// that requester started in environment: in prod, the approver must be a
// named identity other than the requester (compared ignoring case and
// surrounding spaces). Other environments allow self-approval. An empty
// requester (a rollout started by a system) does not block a named
// approver. It applies whatever the Config says; pair it with Authorize.
func TwoPersonRule(requester, approver, environment string) error {
	if environment != fleet.EnvProd {
		return nil
	}
	r, a := strings.TrimSpace(requester), strings.TrimSpace(approver)
	if a == "" {
		return fmt.Errorf("%w: approval in %s needs a named approver", ErrSelfApproval, environment)
	}
	if strings.EqualFold(r, a) {
		return fmt.Errorf("%w: %s started this rollout and cannot also approve it in %s; a second person must approve", ErrSelfApproval, approver, environment)
	}
	return nil
}
