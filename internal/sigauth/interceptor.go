package sigauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/fleet-rollout/fleet/workflows"
)

// QueryRejected lists the signals a workflow dropped (their seal was missing
// or wrong), newest last, at most maxDropped.
const QueryRejected = "rejected-signals"

// MetricDropped counts dropped signals, tagged with the signal's name.
const MetricDropped = "fleet_signals_dropped"

// versionSealed gates enforcement: workflows that started before sealed
// signals existed (their histories hold unsealed ones) keep taking them.
const versionSealed = "sealed-signals"

const maxDropped = 50

// Dropped is one signal a workflow refused.
type Dropped struct {
	Signal string `json:"signal"`
	Reason string `json:"reason"`
}

// Internal reports whether signal name to the workflow of type wfType is
// one the system sends itself: every signal to a batch, and the incident,
// lane-return and freeze-state signals to a rollout.
func Internal(wfType, name string) bool {
	switch wfType {
	case workflows.WorkflowBatch:
		return true
	case workflows.WorkflowRollout:
		return rolloutInternal(name)
	}
	return false
}

func rolloutInternal(name string) bool {
	switch name {
	case workflows.SignalIncident, workflows.SignalLaneReturn, workflows.SignalFreezeState:
		return true
	}
	return false
}

// internalTo is Internal for a signal known by its target's workflow ID.
func internalTo(workflowID, name string) bool {
	if Root(workflowID) != workflowID {
		return true // a batch
	}
	return strings.HasPrefix(workflowID, workflows.RolloutIDPrefix) && rolloutInternal(name)
}

// envelope is a sealed signal's payload.
type envelope struct {
	Sealed *sealed `json:"fleetSealed"`
}

type sealed struct {
	Encoding string `json:"encoding"`
	Data     []byte `json:"data"`
	MAC      []byte `json:"mac"`
}

// Seal wraps arg, the argument of signal name to workflow target, with its
// MAC. The default data converter encodes arg, as the SDK would.
func (k *Keys) Seal(target, name string, arg any) (any, error) {
	p, err := converter.GetDefaultDataConverter().ToPayload(arg)
	if err != nil {
		return nil, fmt.Errorf("seal signal %s to %s: %w", name, target, err)
	}
	enc := string(p.GetMetadata()[converter.MetadataEncoding])
	return envelope{Sealed: &sealed{Encoding: enc, Data: p.GetData(), MAC: k.sign(target, "signal", name, enc, string(p.GetData()))}}, nil
}

// open returns the original payloads of a sealed signal, or why not.
func (k *Keys) open(target, name string, in *commonpb.Payloads) (*commonpb.Payloads, string) {
	if in == nil || len(in.GetPayloads()) != 1 {
		return nil, "not sealed"
	}
	var env envelope
	if err := json.Unmarshal(in.GetPayloads()[0].GetData(), &env); err != nil || env.Sealed == nil {
		return nil, "not sealed"
	}
	s := env.Sealed
	if !k.verify(s.MAC, target, "signal", name, s.Encoding, string(s.Data)) {
		return nil, "seal does not verify"
	}
	return &commonpb.Payloads{Payloads: []*commonpb.Payload{{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(s.Encoding)},
		Data:     s.Data,
	}}}, ""
}

// Interceptor seals and checks internal signals. Give it to the Temporal
// client (sdkclient.Options.Interceptors): the client seals what it sends
// (the status bridge, the webhook, activities), and workers built on that
// client seal what workflows send and check what they receive.
type Interceptor struct {
	interceptor.InterceptorBase
	keys *Keys
}

// New returns the interceptor for keys.
func New(keys *Keys) *Interceptor { return &Interceptor{keys: keys} }

var (
	_ interceptor.ClientInterceptor = (*Interceptor)(nil)
	_ interceptor.WorkerInterceptor = (*Interceptor)(nil)
)

// InterceptClient seals the internal signals the client sends.
func (i *Interceptor) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &clientOut{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}, keys: i.keys}
}

// InterceptWorkflow checks the signals a workflow receives and seals those it sends.
func (i *Interceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &workflowIn{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, keys: i.keys}
}

type clientOut struct {
	interceptor.ClientOutboundInterceptorBase
	keys *Keys
}

func (c *clientOut) SignalWorkflow(ctx context.Context, in *interceptor.ClientSignalWorkflowInput) error {
	if internalTo(in.WorkflowID, in.SignalName) {
		arg, err := c.keys.Seal(in.WorkflowID, in.SignalName, in.Arg)
		if err != nil {
			return err
		}
		cp := *in
		cp.Arg = arg
		in = &cp
	}
	return c.Next.SignalWorkflow(ctx, in)
}

type workflowIn struct {
	interceptor.WorkflowInboundInterceptorBase
	keys *Keys
	// decided is set once the workflow's version is known; enforce says
	// unsealed internal signals are dropped. Signals handled before (the
	// first workflow task) wait in held.
	decided, enforce bool
	held             []heldSignal
	dropped          []Dropped
}

type heldSignal struct {
	ctx workflow.Context
	in  *interceptor.HandleSignalInput
}

func (w *workflowIn) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return w.Next.Init(&workflowOut{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, keys: w.keys})
}

func (w *workflowIn) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	v := workflow.GetVersion(ctx, versionSealed, workflow.DefaultVersion, 1)
	w.enforce, w.decided = v >= 1, true
	if err := workflow.SetQueryHandler(ctx, QueryRejected, func() ([]Dropped, error) {
		return append([]Dropped(nil), w.dropped...), nil
	}); err != nil {
		return nil, fmt.Errorf("register %s query: %w", QueryRejected, err)
	}
	held := w.held
	w.held = nil
	for _, h := range held {
		if err := w.deliver(h.ctx, h.in); err != nil {
			return nil, err
		}
	}
	return w.Next.ExecuteWorkflow(ctx, in)
}

func (w *workflowIn) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	if !Internal(workflow.GetInfo(ctx).WorkflowType.Name, in.SignalName) {
		return w.Next.HandleSignal(ctx, in)
	}
	if !w.decided {
		w.held = append(w.held, heldSignal{ctx: ctx, in: in})
		return nil
	}
	return w.deliver(ctx, in)
}

// deliver passes a sealed signal on, unwrapped; an unsealed one is passed on
// as it is by workflows that started before seals, and dropped by the others.
func (w *workflowIn) deliver(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	arg, why := w.keys.open(id, in.SignalName, in.Arg)
	if why == "" {
		return w.Next.HandleSignal(ctx, &interceptor.HandleSignalInput{SignalName: in.SignalName, Arg: arg})
	}
	if !w.enforce && why == "not sealed" {
		return w.Next.HandleSignal(ctx, in)
	}
	workflow.GetLogger(ctx).Warn("internal signal dropped", "signal", in.SignalName, "reason", why)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"signal": in.SignalName}).Counter(MetricDropped).Inc(1)
	w.dropped = append(w.dropped, Dropped{Signal: in.SignalName, Reason: why})
	if len(w.dropped) > maxDropped {
		w.dropped = w.dropped[len(w.dropped)-maxDropped:]
	}
	return nil
}

type workflowOut struct {
	interceptor.WorkflowOutboundInterceptorBase
	keys *Keys
}

func (o *workflowOut) SignalExternalWorkflow(ctx workflow.Context, workflowID, runID, signalName string, arg any) workflow.Future {
	return o.Next.SignalExternalWorkflow(ctx, workflowID, runID, signalName, o.seal(ctx, workflowID, signalName, arg))
}

func (o *workflowOut) SignalChildWorkflow(ctx workflow.Context, workflowID, signalName string, arg any) workflow.Future {
	return o.Next.SignalChildWorkflow(ctx, workflowID, signalName, o.seal(ctx, workflowID, signalName, arg))
}

func (o *workflowOut) seal(ctx workflow.Context, workflowID, signalName string, arg any) any {
	if !internalTo(workflowID, signalName) {
		return arg
	}
	s, err := o.keys.Seal(workflowID, signalName, arg)
	if err != nil {
		// Cannot happen for the plain structs workflows send; unsealed, the
		// signal is dropped on arrival, which the log explains.
		workflow.GetLogger(ctx).Error("seal signal", "signal", signalName, "error", err)
		return arg
	}
	return s
}
