// Package devserver runs an in-process Temporal server for the worker's dev mode.
//
// State lives in a SQLite file under Options.DataDir, so stopping the process and
// starting it again on the same directory resumes the workflows that were running.
// The schema is created on first start only.
//
// This package links go.temporal.io/server (a cold build takes minutes): keep it
// out of the import graph of workflow and activity unit tests.
package devserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	serverlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// DefaultHost is the frontend's default bind address.
	DefaultHost = "127.0.0.1"
	// DefaultPort is the frontend's default gRPC port (Temporal's usual one).
	DefaultPort = 7233
	// DefaultNamespace is the namespace registered when Options.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultRetention is the workflow retention of a namespace registered here.
	DefaultRetention = 7 * 24 * time.Hour

	// DBFileName is the SQLite file inside Options.DataDir.
	DBFileName = "temporal.db"
	// schemaMarker is written next to the database once the schema is complete,
	// so a start interrupted during setup is detected and redone.
	schemaMarker = "temporal.db.schema-ok"

	namespaceRefresh = time.Second

	clusterName = "active"
	storeName   = "sqlite-default"
)

// Options configure Start. Only DataDir is required.
type Options struct {
	// DataDir holds the SQLite database (created if missing).
	DataDir string
	// Host and Port are the frontend gRPC address (default 127.0.0.1:7233).
	Host string
	Port int
	// HTTPPort enables the frontend's HTTP API on Host when non-zero.
	HTTPPort int
	// Namespace is registered if missing (default "default", 7 days retention).
	Namespace string
	// SearchAttributes are registered on the namespace on every start, idempotently
	// (existing ones are kept; a name registered with another type is an error).
	// See DefaultSearchAttributes. SQLite visibility offers a fixed number of
	// custom attributes per type (e.g. 10 Keyword, 3 Bool, 3 KeywordList).
	SearchAttributes map[string]enumspb.IndexedValueType
	// Log receives the server's logs (name it, e.g. log.Named("temporal")).
	// Nil: a console logger on stderr.
	Log *zap.Logger
	// LogLevel is the minimum level of the server's logs: "debug", "info", "warn"
	// (default) or "error". The server is chatty below warn. While it starts and
	// stops (services dialing each other, pollers cut off) only errors are logged.
	LogLevel string
	// DynamicConfig overrides or adds dynamic config values by key
	// (e.g. "frontend.enableUpdateWorkflowExecution").
	DynamicConfig map[string]any
	// TLS, when set, makes the frontend accept TLS connections only (and,
	// with ClientCAFile, only clients presenting a certificate signed by
	// it). The services behind the frontend talk in plaintext.
	TLS *TLS
	// FrontendInterceptors are appended to the frontend's unary gRPC
	// interceptors (tests use them to see what clients send).
	FrontendInterceptors []grpc.UnaryServerInterceptor
}

// TLS is the frontend's TLS: its certificate, and the CA its clients'
// certificates must be signed by. The server's own clients (the system
// worker and Start's readiness check) present ClientCertFile and check the
// frontend against RootCAFile and ServerName.
type TLS struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, requires clients to present a certificate
	// signed by it (mutual TLS).
	ClientCAFile string
	// For the server's own clients.
	ClientCertFile, ClientKeyFile string
	RootCAFile                    string
	ServerName                    string
}

// clientTLS is the tls.Config of the server's own clients.
func (t *TLS) clientTLS() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.RootCAFile != "" {
		pem, err := os.ReadFile(t.RootCAFile)
		if err != nil {
			return nil, fmt.Errorf("devserver: TLS root CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("devserver: TLS root CA %s: no certificate", t.RootCAFile)
		}
	}
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("devserver: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// DefaultSearchAttributes are the custom search attributes the fleet workflows use.
func DefaultSearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		"RolloutName":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Product":       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"TargetVersion": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Phase":         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Paused":        enumspb.INDEXED_VALUE_TYPE_BOOL,
		"RolloutState":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Clusters":      enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	}
}

// Server is a running in-process Temporal server.
type Server struct {
	server    temporal.Server
	logLevel  zap.AtomicLevel
	steady    zapcore.Level
	address   string
	httpAddr  string
	namespace string
	dbPath    string
}

// Address is the frontend's gRPC host:port, for client.Options.HostPort.
func (s *Server) Address() string { return s.address }

// HTTPAddress is the frontend's HTTP API host:port, or "" when disabled.
func (s *Server) HTTPAddress() string { return s.httpAddr }

// Namespace is the namespace registered on start.
func (s *Server) Namespace() string { return s.namespace }

// DBPath is the SQLite database file.
func (s *Server) DBPath() string { return s.dbPath }

// Stop shuts the server down. State stays in the database for the next Start.
func (s *Server) Stop() error {
	if s == nil || s.server == nil {
		return nil
	}
	srv := s.server
	s.server = nil
	s.logLevel.SetLevel(quiet(s.steady))
	return srv.Stop()
}

// Start sets up the database if needed, starts the server, and returns once the
// frontend answers and the namespace and search attributes are in place. ctx
// bounds that readiness wait; the server itself runs until Stop.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("devserver: DataDir is required")
	}
	if o.Host == "" || o.Host == "localhost" {
		o.Host = DefaultHost // the server wants an IP, not a name
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.Log == nil {
		o.Log = defaultLogger()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}

	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("devserver: data dir: %w", err)
	}
	address := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	if err := checkPortFree(address); err != nil {
		return nil, fmt.Errorf("devserver: frontend address %s is not free (another Temporal server running?): %w", address, err)
	}
	httpAddr := ""
	if o.HTTPPort != 0 {
		httpAddr = net.JoinHostPort(o.Host, strconv.Itoa(o.HTTPPort))
		if err := checkPortFree(httpAddr); err != nil {
			return nil, fmt.Errorf("devserver: frontend HTTP address %s is not free: %w", httpAddr, err)
		}
	}

	dbPath := filepath.Join(o.DataDir, DBFileName)
	sqlConf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		ConnectAttributes: map[string]string{
			"mode": "rwc",
			// WAL with synchronous=NORMAL: durable across a process crash, far fewer fsyncs.
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}
	if err := ensureSchema(o.DataDir, sqlConf); err != nil {
		return nil, err
	}
	if err := createNamespace(sqlConf, o.Namespace, o.SearchAttributes); err != nil {
		return nil, err
	}

	zl, logLevel, steady := serverZap(o.Log, o.LogLevel)
	opts, err := serverOptions(o, address, sqlConf, serverlog.NewZapLogger(zl))
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("devserver: new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Stop()
		return nil, fmt.Errorf("devserver: start: %w", err)
	}
	s := &Server{server: srv, logLevel: logLevel, steady: steady, address: address, httpAddr: httpAddr, namespace: o.Namespace, dbPath: dbPath}

	if err := s.ready(ctx, o); err != nil {
		_ = s.Stop()
		return nil, err
	}
	logLevel.SetLevel(steady)
	return s, nil
}

// ready waits for the frontend, then makes sure the namespace and the search
// attributes exist (both were normally written to the database before start).
func (s *Server) ready(ctx context.Context, o Options) error {
	copts := client.Options{
		HostPort:  s.address,
		Namespace: o.Namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	}
	if o.TLS != nil {
		tc, err := o.TLS.clientTLS()
		if err != nil {
			return err
		}
		copts.ConnectionOptions.TLS = tc
	}
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		return fmt.Errorf("devserver: connect to %s: %w", s.address, err)
	}
	defer c.Close()

	if err := retry(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: o.Namespace})
		var nf *serviceerror.NamespaceNotFound
		if errors.As(err, &nf) {
			_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace:                        o.Namespace,
				WorkflowExecutionRetentionPeriod: durationpb.New(DefaultRetention),
			})
			var exists *serviceerror.NamespaceAlreadyExists
			if errors.As(err, &exists) {
				err = nil
			}
		}
		return err
	}); err != nil {
		return fmt.Errorf("devserver: namespace %q: %w", o.Namespace, err)
	}

	if len(o.SearchAttributes) == 0 {
		return nil
	}
	added := false
	if err := retry(ctx, func() error {
		a, err := ensureSearchAttributes(ctx, c.OperatorService(), o.Namespace, o.SearchAttributes)
		added = added || a
		return err
	}); err != nil {
		return err
	}
	if added {
		// DescribeNamespace reads the database, but the services validate search
		// attributes against their namespace caches: give them one refresh.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(namespaceRefresh + 200*time.Millisecond):
		}
	}
	return nil
}

// ensureSearchAttributes adds the missing attributes. It returns nil once all
// are listed with the wanted types, and added=true when it added some.
func ensureSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, ns string, want map[string]enumspb.IndexedValueType) (added bool, _ error) {
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return false, err
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		have, ok := list.GetCustomAttributes()[name]
		if !ok {
			if _, sys := list.GetSystemAttributes()[name]; sys {
				return false, permanent(fmt.Errorf("devserver: search attribute %q is a system attribute", name))
			}
			missing[name] = typ
			continue
		}
		if have != typ {
			return false, permanent(fmt.Errorf("devserver: search attribute %q is registered as %v, want %v (remove the data dir to start over)", name, have, typ))
		}
	}
	if len(missing) == 0 {
		return false, nil
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        ns,
		SearchAttributes: missing,
	}); err != nil {
		var inv *serviceerror.InvalidArgument
		if errors.As(err, &inv) {
			return false, permanent(err)
		}
		return false, err
	}
	return true, fmt.Errorf("devserver: search attributes added, waiting for them to be listed: %v", keys(missing))
}

// serverOptions builds the server configuration: a single cluster, every
// service in this process with static membership, SQLite for both stores.
func serverOptions(o Options, address string, sqlConf *config.SQL, logger serverlog.Logger) ([]temporal.ServerOption, error) {
	ports := map[primitives.ServiceName]int{primitives.FrontendService: o.Port}
	for _, svc := range []primitives.ServiceName{primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[svc] = p
	}

	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.Host
	conf.Persistence = config.Persistence{
		DefaultStore:     storeName,
		VisibilityStore:  storeName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{storeName: {SQL: sqlConf}},
	}
	httpAddr := ""
	if o.HTTPPort != 0 {
		httpAddr = net.JoinHostPort(o.Host, strconv.Itoa(o.HTTPPort))
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             address,
				HTTPAddress:            httpAddr,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for svc, port := range ports {
		rpc := config.RPC{GRPCPort: port, BindOnIP: o.Host}
		if svc == primitives.FrontendService {
			rpc.HTTPPort = o.HTTPPort
		}
		conf.Services[string(svc)] = config.Service{RPC: rpc}
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(o.Host, strconv.Itoa(port)))
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = address
	if t := o.TLS; t != nil {
		conf.Global.TLS.Frontend.Server = config.ServerTLS{
			CertFile:          t.CertFile,
			KeyFile:           t.KeyFile,
			RequireClientAuth: t.ClientCAFile != "",
		}
		if t.ClientCAFile != "" {
			conf.Global.TLS.Frontend.Server.ClientCAFiles = []string{t.ClientCAFile}
		}
		clientTLS := config.ClientTLS{ServerName: t.ServerName, ForceTLS: true}
		if t.RootCAFile != "" {
			clientTLS.RootCAFiles = []string{t.RootCAFile}
		}
		conf.Global.TLS.Frontend.Client = clientTLS
		conf.Global.TLS.SystemWorker = config.WorkerTLS{CertFile: t.ClientCertFile, KeyFile: t.ClientKeyFile, Client: clientTLS}
	}

	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}

	return []temporal.ServerOption{
		temporal.WithConfig(&conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicConfig(o.HTTPPort, o.DynamicConfig)),
		temporal.WithChainedFrontendGrpcInterceptors(o.FrontendInterceptors...),
	}, nil
}

// dynamicConfig returns the dev defaults, then the caller's overrides.
func dynamicConfig(_ int, overrides map[string]any) dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		// Search attributes are visible as soon as they are added.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// With that cache bypassed, allow more persistence QPS (ratio of the defaults).
		dynamicconfig.FrontendPersistenceMaxQPS.Key(): 10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():  45000,
		// Updates (pause/resume/approve) and their async-accepted form.
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key():              true,
		dynamicconfig.FrontendEnableUpdateWorkflowExecutionAsyncAccepted.Key(): true,
		// Listing and counting rollouts (UI, CLI) is frequent in dev.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Thousands of simulated clusters: keep more mutable states cached.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
		// Namespace changes (e.g. new search attribute aliases) propagate quickly.
		dynamicconfig.NamespaceCacheRefreshInterval.Key(): namespaceRefresh,
		dynamicconfig.EnableEagerWorkflowStart.Key():      true,
		// One task queue partition: with one process polling, tasks on
		// other partitions wait to be forwarded (tens of ms a task).
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		// One history shard holds every workflow: its queues may read
		// new tasks more often than the default 20 times a second, or
		// every task (a workflow task, an activity, a signal to a child)
		// waits up to 50 ms before it is dispatched.
		dynamicconfig.TransferProcessorMaxPollRPS.Key():   500,
		dynamicconfig.TimerProcessorMaxPollRPS.Key():      500,
		dynamicconfig.VisibilityProcessorMaxPollRPS.Key(): 100,
	}
	for k, v := range stockLimits() {
		dc[k] = v
	}
	for k, v := range overrides {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

// stockLimits are the limits of a stock Temporal server (v1.32.2, the
// defaults in go.temporal.io/server/common/dynamicconfig/constants.go), set
// explicitly so the dev server and the tests on it hit exactly the limits
// production hits: none of them is raised here. Only the throughput settings
// in dynamicConfig (persistence QPS, poll rates, partitions, caches) differ
// from a stock server. Options.DynamicConfig may still override one (a test
// that wants to show what a lower limit does, say).
func stockLimits() map[dynamicconfig.Key]any {
	return map[dynamicconfig.Key]any{
		// Search attributes: 2 KB per value (a Keyword list of ~200 cluster
		// IDs breaks it), 40 KB for the whole map, 100 keys. Stock values.
		dynamicconfig.SearchAttributesSizeOfValueLimit.Key():  2 * 1024,
		dynamicconfig.SearchAttributesTotalSizeLimit.Key():    40 * 1024,
		dynamicconfig.SearchAttributesNumberOfKeysLimit.Key(): 100,
		// One payload (a workflow or activity input or result, a signal,
		// a query answer, an update): an error above 2 MB (the workflow task
		// or the request fails), a warning in the server log above 512 KB.
		// Stock values.
		dynamicconfig.BlobSizeLimitError.Key(): 2 * 1024 * 1024,
		dynamicconfig.BlobSizeLimitWarn.Key():  512 * 1024,
		// Memo: an error above 2 MB, a warning above 2 KB. Stock values.
		dynamicconfig.MemoSizeLimitError.Key(): 2 * 1024 * 1024,
		dynamicconfig.MemoSizeLimitWarn.Key():  2 * 1024,
		// One workflow run's history: terminated above 50 MB or 51,200
		// events, warnings above 10 MB or 10,240 events; continue-as-new is
		// suggested (workflow.GetInfo().GetContinueAsNewSuggested) from
		// 4 MB or 4,096 events. Stock values.
		dynamicconfig.HistorySizeLimitError.Key():            50 * 1024 * 1024,
		dynamicconfig.HistorySizeLimitWarn.Key():             10 * 1024 * 1024,
		dynamicconfig.HistoryCountLimitError.Key():           50 * 1024,
		dynamicconfig.HistoryCountLimitWarn.Key():            10 * 1024,
		dynamicconfig.HistorySizeSuggestContinueAsNew.Key():  4 * 1024 * 1024,
		dynamicconfig.HistoryCountSuggestContinueAsNew.Key(): 4 * 1024,
		// Mutable state (pending activities, children, timers, signals...
		// of one run): an error above 8 MB, a warning above 1 MB. Stock values.
		dynamicconfig.MutableStateSizeLimitError.Key(): 8 * 1024 * 1024,
		dynamicconfig.MutableStateSizeLimitWarn.Key():  1024 * 1024,
		// One persistence write (a workflow task's events): at most 4 MB.
		// Stock value.
		dynamicconfig.TransactionSizeLimit.Key(): 4 * 1024 * 1024,
		// Pending at once in one run: 2,000 child workflows, activities,
		// signals to other workflows, cancel requests to other workflows
		// (the command that would exceed it fails). Stock values.
		dynamicconfig.NumPendingChildExecutionsLimitError.Key(): 2000,
		dynamicconfig.NumPendingActivitiesLimitError.Key():      2000,
		dynamicconfig.NumPendingSignalsLimitError.Key():         2000,
		dynamicconfig.NumPendingCancelRequestsLimitError.Key():  2000,
		// Signals one run may receive over its life: 10,000 (then
		// SignalWorkflowExecution fails). Stock value.
		dynamicconfig.MaximumSignalsPerExecution.Key(): 10000,
		// Events buffered while a workflow task runs: 100 events or 2 MB
		// (then the server fails the task to flush them). Stock values.
		dynamicconfig.MaximumBufferedEventsBatch.Key():       100,
		dynamicconfig.MaximumBufferedEventsSizeInBytes.Key(): 2 * 1024 * 1024,
		// Updates (pause, resume, abort, approve): 10 in flight and 2,000
		// over one run's life. Stock values.
		dynamicconfig.WorkflowExecutionMaxInFlightUpdates.Key(): 10,
		dynamicconfig.WorkflowExecutionMaxTotalUpdates.Key():    2000,
		// IDs (workflow, activity, signal names...): 1,000 bytes. Stock value.
		dynamicconfig.MaxIDLengthLimit.Key(): 1000,
	}
}

// ensureSchema creates the SQLite schema on first start only. A database
// without the marker is a setup that did not finish: it is moved aside and
// created again.
func ensureSchema(dataDir string, sqlConf *config.SQL) error {
	dbPath := sqlConf.DatabaseName
	marker := filepath.Join(dataDir, schemaMarker)
	if _, err := os.Stat(marker); err == nil {
		if _, err := os.Stat(dbPath); err != nil {
			return fmt.Errorf("devserver: %s exists but the database is missing: %w", marker, err)
		}
		return nil
	}
	if _, err := os.Stat(dbPath); err == nil {
		aside := fmt.Sprintf("%s.incomplete-%d", dbPath, time.Now().Unix())
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Rename(dbPath+suffix, aside+suffix); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("devserver: moving incomplete database aside: %w", err)
			}
		}
	}
	if err := sqliteschema.SetupSchema(sqlConf); err != nil {
		return fmt.Errorf("devserver: setting up SQLite schema: %w", err)
	}
	if err := os.WriteFile(marker, []byte(sqliteschema.Version+"\n"), 0o644); err != nil {
		return fmt.Errorf("devserver: writing schema marker: %w", err)
	}
	return nil
}

// createNamespace writes the namespace to the database if it is missing, with
// its search attributes, so it is there (and fully configured) from the
// server's first moment. Existing namespaces are left alone.
func createNamespace(sqlConf *config.SQL, name string, sas map[string]enumspb.IndexedValueType) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, sas)
	if err != nil {
		return fmt.Errorf("devserver: namespace %q: %w", name, err)
	}
	ns.Detail.Config.Retention = durationpb.New(DefaultRetention)
	if err := sqliteschema.CreateNamespaces(sqlConf, ns); err != nil {
		return fmt.Errorf("devserver: creating namespace %q: %w", name, err)
	}
	return nil
}

func defaultLogger() *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.DebugLevel)
	return zap.New(core).Named("temporal")
}

// serverZap returns the server's logger, gated by an atomic level that starts
// quiet (errors only) and is set to steady once the server is up. A level can
// only be raised, never lowered below what l already filters.
func serverZap(l *zap.Logger, level string) (*zap.Logger, zap.AtomicLevel, zapcore.Level) {
	steady, err := zapcore.ParseLevel(level)
	if err != nil {
		steady = zapcore.WarnLevel
	}
	if min := zapcore.LevelOf(l.Core()); min > steady {
		steady = min
	}
	atom := zap.NewAtomicLevelAt(quiet(steady))
	l = l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		gated, err := zapcore.NewIncreaseLevelCore(c, atom)
		if err != nil {
			return c
		}
		return gated
	}))
	return l, atom, steady
}

func quiet(steady zapcore.Level) zapcore.Level {
	return max(steady, zapcore.ErrorLevel)
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on. The port is
// left in TIME_WAIT, so the kernel does not hand it out again for a while, while
// an explicit bind to it still succeeds.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("devserver: free port: %w", err)
	}
	defer l.Close()
	addr := l.Addr().(*net.TCPAddr)
	c, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		return 0, fmt.Errorf("devserver: free port: %w", err)
	}
	defer c.Close()
	sc, err := l.Accept()
	if err != nil {
		return 0, fmt.Errorf("devserver: free port: %w", err)
	}
	_ = sc.Close() // server side closes first: TIME_WAIT is on the listening port
	return addr.Port, nil
}

func checkPortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

// retry calls f until it succeeds, returns a permanent error, or ctx ends.
func retry(ctx context.Context, f func() error) error {
	delay := 20 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
}

func keys(m map[string]enumspb.IndexedValueType) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
