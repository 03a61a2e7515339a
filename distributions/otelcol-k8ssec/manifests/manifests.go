// Package manifests holds the Kubernetes manifests of otelcol-k8ssec (the YAML
// files beside this one, applied with `kubectl apply -k`) and decodes them into
// typed client-go objects, so that tests can check their properties and create
// them on a real apiserver.
package manifests // import "github.com/otelcol-k8ssec/otelcol-k8ssec/distributions/otelcol-k8ssec/manifests"

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"k8s.io/apimachinery/pkg/runtime"
	serjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

//go:embed *.yaml
var embedded embed.FS

// files is what Load reads: the embedded manifests (tests swap in others).
var files fs.FS = embedded

// Namespace is where every namespaced object of the manifests lives.
const Namespace = "otelcol-k8ssec"

// Resources returns the files kustomization.yaml lists, in its order.
func Resources() ([]string, error) {
	data, err := fs.ReadFile(files, "kustomization.yaml")
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := utilyaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	if len(k.Resources) == 0 {
		return nil, errors.New("kustomization.yaml lists no resources")
	}
	return k.Resources, nil
}

// Object is one decoded document and where it came from.
type Object struct {
	File string
	Obj  runtime.Object
}

// Load decodes every document of every file kustomization.yaml lists, strictly:
// an unknown or duplicated field is an error, as with `kubectl apply
// --validate=strict`, so a misspelt securityContext key cannot pass unnoticed.
func Load() ([]Object, error) {
	names, err := Resources()
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, name := range names {
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("kustomization.yaml lists %s: %w", name, err)
		}
		decoded, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, obj := range decoded {
			objs = append(objs, Object{File: name, Obj: obj})
		}
	}
	return objs, nil
}

// Decode decodes every document of a multi-document YAML manifest, strictly (see
// Load); documents of comments alone are skipped.
func Decode(data []byte) ([]runtime.Object, error) {
	strict := serjson.NewSerializerWithOptions(serjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		serjson.SerializerOptions{Yaml: true, Strict: true})
	var objs []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		objs = append(objs, obj)
	}
}

// Files returns the names of the YAML files in this directory.
func Files() ([]string, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// stripComments drops whole-line comments, so that a document of comments alone
// counts as empty.
func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(doc) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
		}
	}
	return out.Bytes()
}
