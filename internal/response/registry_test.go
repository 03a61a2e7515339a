package response_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response"
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/response/pidfd"
)

func TestRegistry(t *testing.T) {
	assert.Nil(t, response.Lookup(), "no Killer until one registers: a gateway's case")
	unregisterA := response.Register(pidfd.Killer{})
	unregisterB := response.Register(pidfd.Killer{})
	assert.NotNil(t, response.Lookup())
	unregisterA()
	unregisterA() // a second Shutdown
	assert.NotNil(t, response.Lookup(), "the other receiver still runs")
	unregisterB()
	assert.Nil(t, response.Lookup())
}
