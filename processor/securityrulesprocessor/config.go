package securityrulesprocessor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	rulepacks "github.com/otelcol-k8ssec/otelcol-k8ssec/rules"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/rules"
)

// Modes: what leaves the processor.
const (
	ModeAlerts   = "alerts"   // alerts only; events are dropped
	ModeAnnotate = "annotate" // events only, matched ones carry security_rule.matched
	ModeBoth     = "both"     // annotated events and alerts
)

// Tiers: which rules run, in a gateway split into a stateless front tier and
// a keyed rules tier (docs/install.md, "The gateway's two tiers").
const (
	TierAll   = "all"   // every rule: one collector sees every event
	TierFront = "front" // stateless rules only: any replica may run them
	TierRoute = "route" // no rule runs: each event that feeds a stateful rule leaves as one copy per key family, keyed for the loadbalancing exporter
	TierRules = "rules" // stateful rules only, on the copies TierRoute made
)

// Response modes: what a rule's action (action: kill) does.
const (
	ResponseEnforce = "enforce" // carry it out
	ResponseDryRun  = "dry_run" // check the process is there and report it, touch nothing
	ResponseOff     = "off"     // ignore actions: alerts only
)

// Config is the security_rules processor's configuration.
type Config struct {
	// Rules are default pack names (k8s_audit) or rule file paths and globs,
	// loaded in this order; later files override earlier ones.
	Rules []string `mapstructure:"rules"`
	// Mode is alerts, annotate or both.
	Mode string `mapstructure:"mode"`
	// State bounds thresholds, throttles and sequences.
	State StateConfig `mapstructure:"state"`
	// ReorderWindow is how long, in event time, thresholds and sequences
	// wait for an event that arrives after a later one (audit batches,
	// concurrent exporters); an event older than that is late. 0: arrival
	// order, which annotate mode always takes (it marks only the event in hand).
	ReorderWindow time.Duration `mapstructure:"reorder_window"`
	// CostLimit caps one condition's evaluation (CEL cost units).
	CostLimit uint64 `mapstructure:"cost_limit"`
	// ReloadInterval is how often rule files are checked for changes; 0 turns
	// reloading off. A reload that fails keeps the running rules.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// FlushInterval is how often the summaries of ended throttling periods are
	// sent, so that suppressed matches are always reported.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// Response says what rules' actions do.
	Response ResponseConfig `mapstructure:"response"`
	// Tier is all, front, route or rules: see the Tier constants.
	Tier string `mapstructure:"tier"`
	// StrictAttributes refuses rules that read an attribute the vocabulary
	// does not know; by default such a name is read dynamically and logged as
	// a warning with the closest known name.
	StrictAttributes bool `mapstructure:"strict_attributes"`
}

// ResponseConfig is the response to rules with an action.
type ResponseConfig struct {
	// Mode is enforce, dry_run or off. The default, dry_run, kills nothing:
	// a kill needs both a rule that asks for it and an operator who turned
	// enforce on, after the alerts' dry_run results showed what it would hit.
	Mode string `mapstructure:"mode"`
}

// StateConfig bounds rule state.
type StateConfig struct {
	// MaxKeys is the most keys one stateful rule remembers (LRU).
	MaxKeys int `mapstructure:"max_keys"`
	// MaxHeldEvents is the most events the reorder buffer holds; past it the
	// earliest is taken at once.
	MaxHeldEvents int `mapstructure:"max_held_events"`
}

// DefaultReorderWindow covers the apiserver's audit batching (up to 5s) and
// agents' concurrent exports.
const DefaultReorderWindow = 10 * time.Second

func createDefaultConfig() *Config {
	return &Config{
		Mode:           ModeBoth,
		State:          StateConfig{MaxKeys: rules.DefaultMaxKeys, MaxHeldEvents: rules.DefaultMaxHeld},
		ReorderWindow:  DefaultReorderWindow,
		CostLimit:      rules.DefaultCostLimit,
		ReloadInterval: 10 * time.Second,
		FlushInterval:  10 * time.Second,
		Response:       ResponseConfig{Mode: ResponseDryRun},
		Tier:           TierAll,
	}
}

// Validate loads and compiles the rules, so that `otelcol validate` and the
// collector's start both stop on a bad rule with its file, line and reason.
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.Mode {
	case ModeAlerts, ModeAnnotate, ModeBoth:
	default:
		errs = append(errs, fmt.Errorf("mode %q is not one of %s, %s, %s", cfg.Mode, ModeAlerts, ModeAnnotate, ModeBoth))
	}
	switch cfg.Tier {
	case TierAll, TierFront, TierRoute, TierRules:
	default:
		errs = append(errs, fmt.Errorf("tier %q is not one of %s, %s, %s, %s", cfg.Tier, TierAll, TierFront, TierRoute, TierRules))
	}
	if cfg.Tier == TierRules && cfg.Mode != ModeAlerts {
		// Its events are the front's copies, one per key family: passed on,
		// the backend would get each event again, maybe several times.
		errs = append(errs, fmt.Errorf("tier %s takes the front tier's copies of events, which the front already sent: use mode %s", TierRules, ModeAlerts))
	}
	if cfg.State.MaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("state.max_keys must be positive, got %d", cfg.State.MaxKeys))
	}
	if cfg.State.MaxHeldEvents <= 0 {
		errs = append(errs, fmt.Errorf("state.max_held_events must be positive, got %d", cfg.State.MaxHeldEvents))
	}
	if cfg.ReorderWindow < 0 {
		errs = append(errs, fmt.Errorf("reorder_window must not be negative (0 takes events in arrival order), got %s", cfg.ReorderWindow))
	}
	switch cfg.Response.Mode {
	case ResponseEnforce, ResponseDryRun, ResponseOff:
	default:
		errs = append(errs, fmt.Errorf("response.mode %q is not one of %s, %s, %s", cfg.Response.Mode, ResponseEnforce, ResponseDryRun, ResponseOff))
	}
	if cfg.ReloadInterval < 0 || cfg.FlushInterval <= 0 {
		errs = append(errs, errors.New("reload_interval must not be negative and flush_interval must be positive"))
	}
	if len(cfg.Rules) == 0 {
		errs = append(errs, fmt.Errorf("rules: name at least one default pack (%s) or rule file", strings.Join(rulepacks.PackNames(), ", ")))
	} else if _, err := cfg.load(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// load reads and compiles the configured rules; at start and at a reload,
// rules whose action could not be reported are refused.
func (cfg *Config) load() (*rules.Set, error) {
	srcs, err := cfg.sources()
	if err != nil {
		return nil, err
	}
	set, err := rules.Load(srcs, rules.Options{CostLimit: cfg.CostLimit, StrictAttributes: cfg.StrictAttributes, Select: cfg.selectRules()})
	if err != nil {
		return nil, err
	}
	if cfg.Mode == ModeAnnotate && cfg.Response.Mode != ResponseOff && set.HasAction(rules.ActionKill) {
		// What was done is said in the alert: a kill must not go unreported.
		return nil, fmt.Errorf("rules with action: kill need alerts to report what was done, and mode %s emits none: "+
			"use mode %s or %s, or response.mode %s", ModeAnnotate, ModeBoth, ModeAlerts, ResponseOff)
	}
	return set, nil
}

// sources resolves rules entries to files: a default pack's name, else a path
// or glob that must match at least one file.
func (cfg *Config) sources() ([]rules.Source, error) {
	var srcs []rules.Source
	for _, entry := range cfg.Rules {
		if data, ok := rulepacks.Pack(entry); ok {
			srcs = append(srcs, rules.Source{Name: entry, Data: data})
			continue
		}
		paths, err := filepath.Glob(entry)
		if err != nil {
			return nil, fmt.Errorf("rules: %q: %w", entry, err)
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("rules: %q is neither a default pack (%s) nor an existing file", entry, strings.Join(rulepacks.PackNames(), ", "))
		}
		sort.Strings(paths)
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("rules: %w", err)
			}
			srcs = append(srcs, rules.Source{Name: p, Data: data})
		}
	}
	return srcs, nil
}

// fileStamps is what reloading compares: each rule file's size and mtime.
func (cfg *Config) fileStamps() string {
	var b strings.Builder
	for _, entry := range cfg.Rules {
		if _, ok := rulepacks.Pack(entry); ok {
			continue
		}
		paths, _ := filepath.Glob(entry)
		sort.Strings(paths)
		for _, p := range paths {
			if st, err := os.Stat(p); err == nil {
				fmt.Fprintf(&b, "%s:%d:%d;", p, st.Size(), st.ModTime().UnixNano())
			}
		}
	}
	return b.String()
}

// selectRules is the tier's share of the rules: nil (all) unless the tier
// splits them by whether they keep state.
func (cfg *Config) selectRules() func(*rules.Rule) bool {
	switch cfg.Tier {
	case TierFront:
		return func(r *rules.Rule) bool { return !r.Stateful() }
	case TierRoute, TierRules:
		return (*rules.Rule).Stateful
	}
	return nil
}
