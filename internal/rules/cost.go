package rules

import (
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
)

// Sizes the static cost estimate assumes for values it cannot see: generous for
// audit and kernel events (a Pod spec has tens of containers, not thousands).
const (
	maxStringSize = 64 << 10
	maxListSize   = 1024
)

// sizeEstimator bounds attribute sizes for cel's static cost estimate.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &checker.SizeEstimate{Min: 0, Max: maxStringSize}
	case types.ListKind, types.MapKind, types.DynKind:
		// Dyn: a value inside a request object, a list or map as often as not.
		return &checker.SizeEstimate{Min: 0, Max: maxListSize}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// needsCostTracking reports whether a condition could cost more than limit by
// cel's static estimate. Only those run with a runtime meter: metering every
// step of every condition would cost more than most conditions themselves
// (equality tests, list membership), which are linear in their input and can
// never stall the pipeline. Comprehensions and regular expressions over large
// values are metered and stopped at the limit.
func needsCostTracking(env *cel.Env, checked *cel.Ast, limit uint64) bool {
	est, err := env.EstimateCost(checked, sizeEstimator{})
	return err != nil || est.Max > limit
}
