package k8snode

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PauseImage is the pod sandbox image the node's containerd uses (sandbox_image).
const PauseImage = "k8ssec.test/pause:1"

// Image is a container image made of files of this machine, for a node without a
// registry: one layer, written as a docker-archive tarball that containerd imports.
type Image struct {
	Ref        string // a tag, e.g. k8ssec.test/workload:1
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
}

// File is one entry of an Image: a copy of Source, Data, or a symbolic link to Link.
type File struct {
	Path   string // absolute, in the image
	Mode   int64  // permission bits; 0 means 0644 (0755 when Source is executable)
	Source string
	Data   []byte
	Link   string
}

// BuildImage writes img as a docker-archive tarball in a temporary directory and
// returns its path.
func BuildImage(t testing.TB, img Image) string {
	t.Helper()
	dir := t.TempDir()
	layerPath := filepath.Join(dir, "layer.tar")
	if err := writeLayer(layerPath, img.Files); err != nil {
		t.Fatalf("k8snode: image %s: %v", img.Ref, err)
	}
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatalf("k8snode: image %s: %v", img.Ref, err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: time.Unix(0, 0)},
		Config:       v1.Config{Entrypoint: img.Entrypoint, Cmd: img.Cmd, Env: img.Env},
	})
	if err != nil {
		t.Fatalf("k8snode: image %s: %v", img.Ref, err)
	}
	image, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatalf("k8snode: image %s: %v", img.Ref, err)
	}
	tag, err := name.NewTag(img.Ref)
	if err != nil {
		t.Fatalf("k8snode: image reference %q: %v", img.Ref, err)
	}
	out := filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(out, tag, image); err != nil {
		t.Fatalf("k8snode: image %s: %v", img.Ref, err)
	}
	return out
}

// writeLayer writes files, and every parent directory they need, as a tar.
func writeLayer(out string, files []File) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	var mkdirs func(p string) error
	mkdirs = func(p string) error {
		if p == "/" || p == "." || dirs[p] {
			return nil
		}
		if err := mkdirs(path.Dir(p)); err != nil {
			return err
		}
		dirs[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: 0o755})
	}
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, file := range sorted {
		if !path.IsAbs(file.Path) {
			return fmt.Errorf("%s: not an absolute path", file.Path)
		}
		if err := mkdirs(path.Dir(file.Path)); err != nil {
			return err
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(file.Path, "/"), Mode: file.Mode}
		if file.Link != "" {
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, file.Link
			if hdr.Mode == 0 {
				hdr.Mode = 0o777
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		data := file.Data
		if file.Source != "" {
			fi, err := os.Stat(file.Source)
			if err != nil {
				return err
			}
			if hdr.Mode == 0 && fi.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
			hdr.Size = fi.Size()
		} else {
			hdr.Size = int64(len(data))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		hdr.Typeflag = tar.TypeReg
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if file.Source != "" {
			src, err := os.Open(file.Source)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		} else if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Import loads image tarballs into the node's containerd, in the namespace the
// kubelet's pods come from (k8s.io), unpacked for the CRI's snapshotter.
func (n *Node) Import(t testing.TB, tarballs ...string) {
	t.Helper()
	for _, tb := range tarballs {
		if out, err := n.ctr("images", "import", "--snapshotter", "overlayfs", tb); err != nil {
			t.Fatalf("k8snode: ctr images import %s: %v\n%s", tb, err, out)
		}
	}
}

// ctr runs containerd's ctr against the node's containerd, namespace k8s.io.
func (n *Node) ctr(args ...string) ([]byte, error) {
	return exec.Command("ctr", append([]string{"--address", n.containerd, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
}

// GoBinary builds the main package pkg (an import path of this module) as a static
// binary into a temporary directory and returns its path.
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), path.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("k8snode: go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// pauseImage is the sandbox image: the pause program alone.
func pauseImage(t testing.TB) string {
	t.Helper()
	return BuildImage(t, Image{
		Ref:        PauseImage,
		Files:      []File{{Path: "/pause", Source: GoBinary(t, "github.com/otelcol-k8ssec/otelcol-k8ssec/internal/k8snode/pause")}},
		Entrypoint: []string{"/pause"},
	})
}

// BusyboxFiles are Debian's static busybox at /bin/busybox and a link in /bin for
// each of its applets (sh, nc, wget, cat, ...): a shell and tools for a workload image.
func BusyboxFiles(t testing.TB) []File {
	t.Helper()
	const bb = "/bin/busybox"
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("k8snode: %s --list: %v (apt-get install busybox-static)", bb, err)
	}
	files := []File{{Path: "/bin/busybox", Source: bb, Mode: 0o755}}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			files = append(files, File{Path: "/bin/" + applet, Link: "busybox"})
		}
	}
	return files
}
