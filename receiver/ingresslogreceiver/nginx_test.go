package ingresslogreceiver

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/testenv"

	"github.com/stretchr/testify/require"
)

// ingressNginxLogFormat is ingress-nginx's default log-format-upstream, copied
// from its documentation rather than from the package's constant, so that the
// test would catch the constant drifting from what ingress-nginx writes.
const ingressNginxLogFormat = `$remote_addr - $remote_user [$time_local] "$request" ` +
	`$status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time ` +
	`[$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr ` +
	`$upstream_response_length $upstream_response_time $upstream_status $req_id`

// nginxConf is a reverse proxy configured as ingress-nginx configures one
// Ingress: its variables set as the controller's Lua would set them, the
// request id from X-Request-ID when the client sends one (so the test can tell
// its requests apart), nginx's own otherwise.
const nginxConf = `
daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    log_format upstreaminfo '%[2]s';
    map $http_x_request_id $req_id {
        default $request_id;
        "~."    $http_x_request_id;
    }
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    client_max_body_size 0;
    server {
        listen 127.0.0.1:%[3]d;
        access_log %[1]s/access.log upstreaminfo;
        set $proxy_upstream_name "shop-web-8080";
        set $proxy_alternative_upstream_name "";
        location / {
            proxy_pass http://%[4]s;
        }
    }
}
`

// nginxBinary finds nginx; without it the test fails and says how to get it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx is not installed: this test runs a real nginx. Install it with " +
		"`apt-get install -y nginx-light` (.ci/run does).")
	return ""
}

// startNginx runs nginx in front of upstream (host:port) on a free loopback
// port and returns its address and the path of its access log. It is stopped
// when the test ends.
func startNginx(t *testing.T, upstream string) (addr, accessLog string) {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, ingressNginxLogFormat, port, upstream)), 0o600))
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf).CombinedOutput()
	require.NoError(t, err, "nginx -t: %s", out)

	cmd := exec.Command(bin, "-p", dir, "-c", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: the log is complete
		_ = cmd.Wait()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
	})
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "nginx listens on %s (error.log in %s)", addr, dir)
	return addr, filepath.Join(dir, "access.log")
}

// sendRaw sends one request exactly as written, from the loopback address
// from ("" for the default) so that nginx logs it as that client, with the
// given header lines, and returns the response's status code.
func sendRaw(t *testing.T, addr, from, method, target string, headers []string, body []byte) int {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	var h strings.Builder
	fmt.Fprintf(&h, "%s %s HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n", method, target)
	for _, line := range headers {
		h.WriteString(line + "\r\n")
	}
	if body != nil {
		fmt.Fprintf(&h, "Content-Length: %d\r\n", len(body))
	}
	h.WriteString("\r\n")
	w := bufio.NewWriter(c)
	_, err = w.WriteString(h.String())
	require.NoError(t, err)
	_, err = w.Write(body)
	require.NoError(t, err)
	require.NoError(t, w.Flush())
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	require.NoError(t, err, "%s %s", method, target)
	resp.Body.Close()
	return resp.StatusCode
}
