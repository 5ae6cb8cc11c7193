package bridge

import (
	"context"
	"errors"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
)

// Class says what the bridge does after a failed signal.
type Class int

const (
	// Transient: the error concerns this workflow (a busy workflow, an
	// internal error) and may go away. The signal is retried with a capped
	// backoff for Config.RetryFor, then its events are dead-lettered so they
	// stop holding back the other workflows' statuses.
	Transient Class = iota
	// Global: Temporal as a whole is out of reach or throttling the bridge
	// (unavailable, deadline exceeded, rate limits, overload, permission
	// errors). Every signal fails alike, so the signal is retried with a
	// capped backoff for as long as it takes; but if other signals got
	// through meanwhile, the error is this workflow's after all and it is
	// treated as Transient.
	Global
	// Permanent: the same signal will never be accepted (the workflow is
	// gone, the payload is over a server limit, the workflow is past its
	// signal limit, the request is invalid). Its events go to the
	// dead-letter topic at once.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Global:
		return "global"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Classify sorts a SignalWorkflow error.
//
//   - NotFound (the workflow finished or never existed), InvalidArgument
//     (the blob size limit, "exceeded workflow execution limit for signal
//     events", a malformed request), FailedPrecondition, AlreadyExists,
//     Unimplemented: Permanent.
//   - ResourceExhausted: by its cause. UNSPECIFIED is what gRPC itself
//     answers for a message over the server's size limit, and
//     PERSISTENCE_STORAGE_LIMIT and WORKER_DEPLOYMENT_LIMITS do not clear by
//     waiting: Permanent. BUSY_WORKFLOW is this workflow's: Transient. The
//     rate, concurrency and overload causes throttle every caller: Global.
//   - Unavailable, DeadlineExceeded, Canceled, PermissionDenied, namespace
//     errors, a context error: Global.
//   - Anything else (Internal, DataLoss, unknown): Transient.
func Classify(err error) Class {
	var (
		nf   *serviceerror.NotFound
		ia   *serviceerror.InvalidArgument
		fp   *serviceerror.FailedPrecondition
		ae   *serviceerror.AlreadyExists
		ui   *serviceerror.Unimplemented
		re   *serviceerror.ResourceExhausted
		un   *serviceerror.Unavailable
		de   *serviceerror.DeadlineExceeded
		ca   *serviceerror.Canceled
		pd   *serviceerror.PermissionDenied
		nnf  *serviceerror.NamespaceNotFound
		nna  *serviceerror.NamespaceNotActive
		nis  *serviceerror.NamespaceInvalidState
		nunv *serviceerror.NamespaceUnavailable
	)
	switch {
	case err == nil:
		return Transient
	case errors.As(err, &nf), errors.As(err, &ia), errors.As(err, &fp), errors.As(err, &ae), errors.As(err, &ui):
		return Permanent
	case errors.As(err, &re):
		switch re.Cause {
		case enumspb.RESOURCE_EXHAUSTED_CAUSE_UNSPECIFIED,
			enumspb.RESOURCE_EXHAUSTED_CAUSE_PERSISTENCE_STORAGE_LIMIT,
			enumspb.RESOURCE_EXHAUSTED_CAUSE_WORKER_DEPLOYMENT_LIMITS:
			return Permanent
		case enumspb.RESOURCE_EXHAUSTED_CAUSE_BUSY_WORKFLOW:
			return Transient
		}
		return Global
	case errors.As(err, &un), errors.As(err, &de), errors.As(err, &ca),
		errors.As(err, &pd),
		errors.As(err, &nnf), errors.As(err, &nna), errors.As(err, &nis), errors.As(err, &nunv),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Global
	}
	return Transient
}

// sizeRelated reports whether a permanent error may be about the size of
// the whole signal rather than one event in it, so that the bridge splits
// the events in two and tries each half.
func sizeRelated(err error) bool {
	var (
		ia *serviceerror.InvalidArgument
		re *serviceerror.ResourceExhausted
	)
	if errors.As(err, &ia) {
		// Not the per-workflow signal count: every half fails alike.
		return !strings.Contains(ia.Error(), "limit for signal events")
	}
	return errors.As(err, &re) && re.Cause == enumspb.RESOURCE_EXHAUSTED_CAUSE_UNSPECIFIED
}
