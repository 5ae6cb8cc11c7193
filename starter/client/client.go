// Package client drives fleet rollouts through Temporal: start one, read its
// status (Snapshot: one consistent snapshot of the rollout's and its
// in-flight batches' status queries, see Merge, with the workflow's execution
// status and, when it was terminated, failed, timed out or canceled, the
// server's reason), pause, resume, abort and approve it, change its pacing,
// list rollouts (running and recently closed, with their execution status),
// and set, lift and read the fleet-wide freeze. The fleet CLI is built on it; other services
// import it the same way.
//
// Every method accepts a rollout's bare name ("kafka-3.7") or its workflow ID
// ("rollout/kafka-3.7").
package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/fleet-rollout/fleet/internal/identity"
	"github.com/fleet-rollout/fleet/internal/planstore"
	"github.com/fleet-rollout/fleet/internal/spec"
	"github.com/fleet-rollout/fleet/workflows"
)

// RolloutWorkflowType is the registered name of workflows.RolloutWorkflow.
// The client starts it by name so it does not link the workflow code.
const RolloutWorkflowType = "Rollout"

// Client drives rollouts through a Temporal client.
type Client struct {
	c sdkclient.Client
	// now is the clock Start judges a freeze's end by; nil is time.Now.
	now func() time.Time
	// signer signs every request (nil: requests go unsigned).
	signer *identity.Signer
	// plans is the plan store (nil: none; see WithPlans).
	plans *planstore.Cache
}

// New wraps a connected Temporal client. Closing c is the caller's job.
func New(c sdkclient.Client) *Client { return &Client{c: c} }

// WithSigner returns a client that signs every request it sends (start,
// pause, resume, abort, approve, pacing, freeze, unfreeze) with s: what a
// policy with `identity: signed` requires. A request whose actor is not
// s.Name is signed by s as a service vouching for that actor.
func (c *Client) WithSigner(s *identity.Signer) *Client {
	cp := *c
	cp.signer = s
	return &cp
}

// proof signs a request to target, or returns nil without a signer. An
// empty actor is the signer's own name.
func (c *Client) proof(target, action string, args []byte, actor *string) *identity.Proof {
	if c.signer == nil {
		return nil
	}
	if *actor == "" {
		*actor = c.signer.Name
	}
	p := c.signer.Sign(target, action, args, *actor)
	return &p
}

func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// ErrNotFound is matched (errors.Is) by the error returned when no rollout
// of the given name exists.
var ErrNotFound = errors.New("rollout not found")

// ErrAlreadyRunning is matched (errors.Is) by the error Start returns when a
// rollout of the same name is already running.
var ErrAlreadyRunning = errors.New("rollout already running")

// NotFoundError says no rollout of that name exists.
type NotFoundError struct {
	Name string
	Err  error
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("rollout %q not found", e.Name) }

// Unwrap returns the Temporal error.
func (e *NotFoundError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AlreadyRunningError says a rollout of that name is already running.
type AlreadyRunningError struct {
	Name string
	Err  error
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("rollout %q is already running (workflow %s)", e.Name, workflows.RolloutID(e.Name))
}

// Unwrap returns the Temporal error.
func (e *AlreadyRunningError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAlreadyRunning) true.
func (e *AlreadyRunningError) Is(target error) bool { return target == ErrAlreadyRunning }

// RejectedError is an action (pause, resume, abort, approve) the rollout
// refused or failed; Message is the workflow's own explanation.
type RejectedError struct {
	Action     string
	WorkflowID string
	Message    string
	// Refused says the policy refused the request (its proof, the
	// person's role, the two-person rule) rather than the rollout's state:
	// errors.Is(err, ErrRefused).
	Refused bool
	Err     error
}

// ErrNoAnswer is matched (errors.Is) by a request Temporal or the worker did
// not answer in time.
var ErrNoAnswer = errors.New("no answer in time")

// ErrRefused is matched (errors.Is) by a RejectedError the policy refused.
var ErrRefused = errors.New("refused by policy")

// Is makes errors.Is(err, ErrRefused) true for a policy refusal.
func (e *RejectedError) Is(target error) bool { return target == ErrRefused && e.Refused }

// rejected builds the RejectedError for the workflow's ApplicationError.
func rejected(action, workflowID string, app *temporal.ApplicationError, err error) *RejectedError {
	return &RejectedError{Action: action, WorkflowID: workflowID, Message: app.Message(),
		Refused: app.Type() == workflows.RefusedErrorType, Err: err}
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s %s: rejected: %s", e.Action, e.WorkflowID, e.Message)
}

// Unwrap returns the Temporal error.
func (e *RejectedError) Unwrap() error { return e.Err }

// ErrFrozen is matched (errors.Is) by the error Start returns while a
// fleet-wide freeze is in force.
var ErrFrozen = errors.New("the fleet is frozen")

// FrozenError says Start refused to start a rollout because a fleet-wide
// freeze is in force: who set it, why and until when.
type FrozenError struct {
	Name   string
	Freeze workflows.FreezeInfo
}

func (e *FrozenError) Error() string {
	f := e.Freeze
	s := fmt.Sprintf("start rollout %q: the fleet is frozen by %s until %s", e.Name, orUnknown(f.Actor), f.Until.UTC().Format(time.RFC3339))
	if !f.Since.IsZero() {
		s += fmt.Sprintf(" (since %s)", f.Since.UTC().Format(time.RFC3339))
	}
	return s + ": " + orUnknown(f.Reason) + "; no rollout starts until the freeze ends or is lifted (fleet unfreeze)"
}

// Is makes errors.Is(err, ErrFrozen) true.
func (e *FrozenError) Is(target error) bool { return target == ErrFrozen }

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(unknown)"
	}
	return s
}

// FinishedError is an action sent to a rollout that has already ended.
type FinishedError struct {
	Action string
	Name   string
	Status string // Temporal execution status: Completed, Failed, Terminated, ...
	Err    error
}

func (e *FinishedError) Error() string {
	return fmt.Sprintf("%s %s: rollout %q has already ended (%s)",
		e.Action, workflows.RolloutID(e.Name), e.Name, strings.ToLower(e.Status))
}

// Unwrap returns the Temporal error.
func (e *FinishedError) Unwrap() error { return e.Err }

// Start starts a rollout and returns its workflow ID. The spec is
// normalized (on a copy) and validated first: an invalid spec starts
// nothing. requester is who starts it; it also fills the spec's Requester
// when that is empty. A finished rollout of the same name
// may be started again; a running one may not (AlreadyRunningError).
//
// Nothing starts while a fleet-wide freeze is in force (*FrozenError,
// matching ErrFrozen): the rollout would only wait, paused, until the freeze
// ends. No freeze workflow means no freeze; a freeze state that cannot be read
// is an error and starts nothing (fail closed, as the rollout itself does).
func (c *Client) Start(ctx context.Context, r *spec.Rollout, requester string) (string, error) {
	if r == nil {
		return "", errors.New("start rollout: no spec")
	}
	return c.start(ctx, workflows.RolloutInput{Spec: *r, Requester: requester})
}

// start validates, checks the freeze, signs and starts a rollout.
func (c *Client) start(ctx context.Context, in workflows.RolloutInput) (string, error) {
	name := in.Spec.Name
	in.Spec.Normalize()
	if err := in.Spec.Validate(); err != nil {
		return "", fmt.Errorf("start rollout %q: invalid spec: %w", name, err)
	}
	fst, err := c.FreezeStatus(ctx)
	if err != nil {
		return "", fmt.Errorf("start rollout %q: cannot tell whether the fleet is frozen, so nothing started: %w", name, err)
	}
	// A freeze whose end has passed is being lifted by its timer: the
	// rollout's own freeze check treats it as over too.
	if f := fst.Freeze; f != nil && f.Until.After(c.clock()) {
		return "", &FrozenError{Name: name, Freeze: *f}
	}
	if in.Spec.Requester == "" {
		in.Spec.Requester = in.Requester
	}
	id := workflows.RolloutID(name)
	in.Auth = c.proof(id, "start", workflows.StartArgs(in), &in.Requester)
	opts := sdkclient.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
	run, err := c.c.ExecuteWorkflow(ctx, opts, RolloutWorkflowType, in)
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return "", &AlreadyRunningError{Name: name, Err: err}
		}
		return "", fmt.Errorf("start rollout %q (workflow %s): %w", name, id, err)
	}
	return run.GetID(), nil
}

// snapshotReads is how many times Status reads a rollout and its batches
// before it settles for a snapshot Check still finds inconsistent.
const snapshotReads = 4

// Status returns the rollout's status: Snapshot's RolloutStatus. When the
// workflow closed abnormally before the rollout ended, State is the
// execution status (terminated, timed-out, canceled, failed) and the last
// audit entry is the server's close with its reason and identity; Snapshot
// has them as fields.
func (c *Client) Status(ctx context.Context, id string) (*workflows.RolloutStatus, error) {
	st, err := c.Snapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	return &st.RolloutStatus, nil
}

// Snapshot returns the rollout's status: one consistent snapshot (Merge) of
// the rollout's status query and the status queries of its in-flight
// batches (running, paused or baking), read again while Check finds it
// inconsistent (a batch finished between the queries, counts that do not add
// up), and the workflow execution as Temporal records it (following
// continue-as-new to the latest run). When the workflow closed abnormally
// (terminated, failed, timed out, canceled) before the rollout ended, State
// says so, Execution carries the server's reason and Stale marks the counts
// as the last recorded, not live; that holds too when no worker can answer
// the query any more. A running rollout whose query fails is an error.
func (c *Client) Snapshot(ctx context.Context, id string) (*Status, error) {
	name := workflows.RolloutName(id)
	rid := workflows.RolloutID(name)
	var merged workflows.RolloutStatus
	var problems []string
	for attempt := 0; ; attempt++ {
		st, err := c.queryRollout(ctx, rid, name)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errDecode) {
				if x, derr := c.describe(ctx, rid); derr == nil && x.Status.Closed() {
					return closedStatus(name, x, nil, c.wrap(ctx, "status", name, err)), nil
				}
			}
			if errors.Is(err, errDecode) {
				return nil, err
			}
			return nil, c.wrap(ctx, "status", name, err)
		}
		batches, err := c.readBatches(ctx, rid, st)
		if err != nil {
			return nil, err
		}
		merged = Merge(*st, batches)
		problems = Check(merged, phaseConcurrency(merged))
		if missing := unread(*st, batches); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("batches %v in flight could not be read", missing))
		}
		if len(problems) == 0 || attempt+1 >= snapshotReads {
			break
		}
		t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("status %s: %w", rid, ctx.Err())
		case <-t.C:
		}
	}
	x, err := c.describe(ctx, rid)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("status %s: %w", rid, ctx.Err())
		}
		x = Execution{Status: ExecUnknown}
	}
	if !x.StartTime.IsZero() && (merged.StartedAt.IsZero() || x.StartTime.Before(merged.StartedAt)) {
		// The server's record of the start, not the first workflow task's
		// (late when no worker was there to run it).
		merged.StartedAt = x.StartTime
	}
	if x.Status.Closed() {
		return closedStatus(name, x, &merged, nil), nil
	}
	return &Status{RolloutStatus: merged, Execution: x, Inconsistent: problems}, nil
}

var errDecode = errors.New("cannot decode the status")

// queryRollout asks the rollout workflow for its status.
func (c *Client) queryRollout(ctx context.Context, rid, name string) (*workflows.RolloutStatus, error) {
	v, err := c.c.QueryWorkflow(ctx, rid, "", workflows.QueryStatus)
	if err != nil {
		return nil, err
	}
	var st workflows.RolloutStatus
	if err := v.Get(&st); err != nil {
		return nil, fmt.Errorf("status %s: %w: %w", rid, errDecode, err)
	}
	if st.ID == "" {
		st.ID = rid
	}
	if st.Name == "" {
		st.Name = name
	}
	if err := c.fillPending(ctx, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// phaseConcurrency is the concurrency Check holds live snapshots to: none.
// The status carries each phase's concurrency in force
// (PhaseStatus.Concurrency), but after a pacing cut the clusters already in
// flight above it are real until they end, so a live snapshot above it is
// not inconsistent. The workflow tests hold in flight plus held to the
// concurrency (workflows/snapshot_test.go).
func phaseConcurrency(workflows.RolloutStatus) map[string]int { return nil }

// readBatches queries, at once, every batch the rollout reports in flight.
// A batch that cannot be asked (not started, or gone) has no entry.
func (c *Client) readBatches(ctx context.Context, rid string, st *workflows.RolloutStatus) (map[int]workflows.BatchStatus, error) {
	var nums []int
	for _, p := range st.Phases {
		for _, b := range p.Batches {
			if batchInFlight(b.State) {
				nums = append(nums, b.Number)
			}
		}
	}
	out := map[int]workflows.BatchStatus{}
	if len(nums) == 0 {
		return out, nil
	}
	got := make([]*workflows.BatchStatus, len(nums))
	errs := make([]error, len(nums))
	var wg sync.WaitGroup
	for i, n := range nums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.batchStatus(ctx, rid, n)
		}()
	}
	wg.Wait()
	for i, n := range nums {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if got[i] != nil {
			out[n] = *got[i]
		}
	}
	return out, nil
}

// batchStatus queries one batch. It returns nil, nil when the batch cannot
// be asked because it has not started yet or has just finished.
func (c *Client) batchStatus(ctx context.Context, rolloutID string, n int) (*workflows.BatchStatus, error) {
	bid := workflows.BatchID(rolloutID, n)
	v, err := c.c.QueryWorkflow(ctx, bid, "", workflows.QueryStatus)
	if err == nil {
		var bs workflows.BatchStatus
		if err := v.Get(&bs); err != nil {
			return nil, fmt.Errorf("status %s: decode: %w", bid, err)
		}
		return &bs, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("status %s: %w", bid, err)
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	d, derr := c.c.DescribeWorkflowExecution(ctx, bid, "")
	if derr == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return nil, nil
	}
	return nil, fmt.Errorf("status %s: %w", bid, err)
}

func batchInFlight(s workflows.BatchState) bool {
	return s == workflows.BatchRunning || s == workflows.BatchPaused || s == workflows.BatchBaking
}

// mergeBatch fills a batch of the rollout's status with what the batch
// workflow itself reports; its counts are recounted from its clusters.
func mergeBatch(dst *workflows.BatchStatus, src *workflows.BatchStatus) {
	if src.State != "" {
		dst.State = src.State
	}
	if src.Phase != "" && dst.Phase == "" {
		dst.Phase = src.Phase
	}
	if src.Lane != nil {
		l := *src.Lane
		dst.Lane = &l
	}
	if len(src.Clusters) > 0 {
		dst.Clusters = append([]workflows.ClusterStatus(nil), src.Clusters...)
		dst.Counts = countClusters(dst.Clusters)
	} else {
		dst.Counts = src.Counts
	}
}

// recount recomputes the rollout's counts from its batches' counts.
// Clusters the batches do not account for are pending.
func recount(st *workflows.RolloutStatus) {
	var c workflows.Counts
	for _, p := range st.Phases {
		for _, b := range p.Batches {
			c.Merge(b.Counts)
		}
	}
	if n := Sum(c); n < st.Total {
		c.Pending += st.Total - n
	}
	st.Counts = c
}

func countClusters(cs []workflows.ClusterStatus) workflows.Counts {
	var c workflows.Counts
	for _, cl := range cs {
		c.Add(cl.State)
	}
	return c
}

// Sum is the number of clusters a tally covers.
func Sum(c workflows.Counts) int {
	return c.Pending + c.InFlight + c.Held + c.Verifying + c.Done + c.Failed + c.Aborted + c.Skipped
}

// Pause pauses the rollout: clusters in flight are held before their next
// broker. The reason is required by the workflow.
func (c *Client) Pause(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	req.Auth = c.proof(rolloutID(id), workflows.Pause, workflows.SignedArgs(req), &req.Actor)
	return c.update(ctx, workflows.Pause, id, req)
}

// Resume resumes a paused rollout where it stopped.
func (c *Client) Resume(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	req.Auth = c.proof(rolloutID(id), workflows.Resume, workflows.SignedArgs(req), &req.Actor)
	return c.update(ctx, workflows.Resume, id, req)
}

// Abort stops the rollout for good; clusters in flight are held.
func (c *Client) Abort(ctx context.Context, id string, req workflows.ActionRequest) (workflows.ActionResult, error) {
	req.Auth = c.proof(rolloutID(id), workflows.Abort, workflows.SignedArgs(req), &req.Actor)
	return c.update(ctx, workflows.Abort, id, req)
}

// Pace changes a running rollout's pacing for its current and later phases:
// req.Concurrency (the most clusters applied at once; 0 leaves it) and
// req.Bake (nil leaves it). Batches already running take the new
// concurrency at once. A request the rollout refuses (neither field, a
// negative value, a finished rollout) is a *RejectedError with its reason.
func (c *Client) Pace(ctx context.Context, id string, req workflows.PacingRequest) (workflows.ActionResult, error) {
	req.Auth = c.proof(rolloutID(id), workflows.UpdatePacing, workflows.SignedArgs(req), &req.Actor)
	return c.update(ctx, workflows.UpdatePacing, id, req)
}

// Approve approves the rollout's plan (req.PlanHash) or a gated phase (req.Phase).
func (c *Client) Approve(ctx context.Context, id string, req workflows.ApproveRequest) (workflows.ActionResult, error) {
	req.Auth = c.proof(rolloutID(id), workflows.Approve, workflows.SignedArgs(req), &req.Actor)
	return c.update(ctx, workflows.Approve, id, req)
}

// rolloutID is the workflow ID of a rollout named by ID or name.
func rolloutID(id string) string { return workflows.RolloutID(workflows.RolloutName(id)) }

func (c *Client) update(ctx context.Context, action, id string, arg any) (workflows.ActionResult, error) {
	var res workflows.ActionResult
	name := workflows.RolloutName(id)
	rid := workflows.RolloutID(name)
	h, err := c.c.UpdateWorkflow(ctx, sdkclient.UpdateWorkflowOptions{
		WorkflowID:   rid,
		UpdateName:   action,
		Args:         []any{arg},
		WaitForStage: sdkclient.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return res, c.wrap(ctx, action, name, err)
	}
	return res, nil
}

// wrap turns a Temporal error about a rollout into one that names it.
func (c *Client) wrap(ctx context.Context, action, name string, err error) error {
	rid := workflows.RolloutID(name)
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s %s: %w", action, rid, ctx.Err())
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return rejected(action, rid, app, err)
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// An update on a finished workflow is NotFound too: tell them apart.
		if ctx.Err() == nil {
			if d, derr := c.c.DescribeWorkflowExecution(ctx, rid, ""); derr == nil {
				if s := d.GetWorkflowExecutionInfo().GetStatus(); s != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					return &FinishedError{Action: action, Name: name, Status: s.String(), Err: err}
				}
			}
		}
		return &NotFoundError{Name: name, Err: err}
	}
	var qf *serviceerror.QueryFailed
	if errors.As(err, &qf) {
		return fmt.Errorf("%s %s: query failed: %s", action, rid, qf.Message)
	}
	var to *sdkclient.WorkflowUpdateServiceTimeoutOrCanceledError
	var de *serviceerror.DeadlineExceeded
	if errors.As(err, &to) || errors.As(err, &de) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w (is a fleet worker polling task queue %q?): %w",
			action, rid, ErrNoAnswer, workflows.TaskQueue, err)
	}
	return fmt.Errorf("%s %s: %w", action, rid, err)
}

// RecentlyClosed is how long List(open) keeps showing a rollout whose
// workflow closed, so a rollout that ended (or was terminated) does not
// vanish from the list the moment it stops.
const RecentlyClosed = 24 * time.Hour

// Summary is one rollout in a list.
type Summary struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	RunID string `json:"runId"`
	// Status is the workflow's execution status: running, completed,
	// failed, terminated, timed-out, canceled.
	Status    ExecStatus `json:"status"`
	StartTime time.Time  `json:"startTime"`
	CloseTime *time.Time `json:"closeTime,omitempty"`
	// Reason and Identity are the server's reason for an abnormal close
	// (terminated, failed, timed out, canceled) and who closed it.
	Reason   string `json:"reason,omitempty"`
	Identity string `json:"identity,omitempty"`
}

// List lists rollouts, newest first: when open is set, the running ones and
// those closed within RecentlyClosed; otherwise all the visibility store
// still holds. Runs closed by continue-as-new are left out: the run that
// followed represents them. A rollout closed abnormally carries the
// server's reason.
func (c *Client) List(ctx context.Context, open bool) ([]Summary, error) {
	q := "WorkflowType = '" + RolloutWorkflowType + "'"
	if open {
		since := c.clock().Add(-RecentlyClosed).UTC().Format(time.RFC3339)
		q += " AND (ExecutionStatus = 'Running' OR CloseTime >= '" + since + "')"
	}
	var out []Summary
	var token []byte
	for {
		resp, err := c.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         q,
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
				continue
			}
			s := Summary{
				ID:     e.GetExecution().GetWorkflowId(),
				RunID:  e.GetExecution().GetRunId(),
				Status: execStatus(e.GetStatus()),
			}
			s.Name = workflows.RolloutName(s.ID)
			if t := e.GetStartTime(); t != nil {
				s.StartTime = t.AsTime()
			}
			if t := e.GetCloseTime(); t != nil && !t.AsTime().IsZero() && t.AsTime().Unix() > 0 {
				ct := t.AsTime()
				s.CloseTime = &ct
			}
			out = append(out, s)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTime.After(out[j].StartTime) })
	c.closeReasons(ctx, out)
	return out, nil
}

// closeReasons fills the reason of each rollout closed abnormally, a few at
// a time.
func (c *Client) closeReasons(ctx context.Context, list []Summary) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range list {
		if !list[i].Status.Abnormal() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s := &list[i]
			var d *workflowservice.DescribeWorkflowExecutionResponse
			if s.Status == ExecTimedOut {
				d, _ = c.c.DescribeWorkflowExecution(ctx, s.ID, s.RunID)
			}
			s.Reason, s.Identity = c.closeReason(ctx, s.ID, s.RunID, d)
		}()
	}
	wg.Wait()
}
