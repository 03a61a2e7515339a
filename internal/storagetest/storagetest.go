// Package storagetest gives tests a real file_storage extension and a host
// that hands it to the component under test, as a collector would.
package storagetest

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
)

// ID is the storage extension's id in the tests' configs.
var ID = component.MustNewID("file_storage")

// Start starts a file_storage extension keeping its data in dir; the caller
// shuts it down (a restart test starts a second one on the same dir).
func Start(t testing.TB, dir string) extension.Extension {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return ext
}

// Host wraps host so that it offers storage under ID.
func Host(host component.Host, storage extension.Extension) component.Host {
	return extHost{Host: host, ext: map[component.ID]component.Component{ID: storage}}
}

type extHost struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h extHost) GetExtensions() map[component.ID]component.Component { return h.ext }
