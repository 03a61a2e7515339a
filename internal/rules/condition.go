package rules

import (
	"errors"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// condition is a compiled condition: its CEL program and, when native
// evaluation covers the condition (native.go), the same condition as closures.
type condition struct {
	prg    cel.Program
	native *nativeProgram
	limit  int // comprehension steps native evaluation may take: the cost limit
	// checked is the condition until it is compiled natively.
	checked *cel.Ast
}

var errCostLimit = errors.New("operation cancelled: actual cost limit exceeded")

// eval reports whether the event in act matches. Native evaluation answers
// when it can; CEL answers the rest, errors included.
func (c *condition) eval(act *activation) (bool, error) {
	if c.native != nil {
		switch v := c.native.eval(act, c.limit); v.k {
		case nBool:
			return v.b, nil
		case nStop:
			return false, errCostLimit
		}
	}
	return c.evalCEL(act)
}

// evalCEL evaluates with the CEL interpreter alone.
func (c *condition) evalCEL(act *activation) (bool, error) {
	out, _, err := c.prg.Eval(act)
	if err != nil {
		return false, err
	}
	return out == types.True, nil
}
