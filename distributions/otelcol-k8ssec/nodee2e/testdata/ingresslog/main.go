// Command ingresslog is a tiny HTTP server that writes one line per request to
// standard output in ingress-nginx's default log format (log-format-upstream), as an
// ingress-nginx controller pod does: the agent tails it from /var/log/pods.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := ":8080"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body := []byte("ok\n")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		elapsed := strconv.FormatFloat(time.Since(start).Seconds(), 'f', 3, 64)
		// $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
		// "$http_referer" "$http_user_agent" $request_length $request_time
		// [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr
		// $upstream_response_length $upstream_response_time $upstream_status $req_id
		fmt.Printf("%s - - [%s] \"%s %s %s\" %d %d \"%s\" \"%s\" %d %s [shop-web-8080] [] 127.0.0.1:8081 %d %s 200 %s\n",
			host, start.Format("02/Jan/2006:15:04:05 -0700"), r.Method, r.RequestURI, r.Proto,
			http.StatusOK, len(body), orDash(r.Referer()), orDash(r.UserAgent()), r.ContentLength+200,
			elapsed, len(body), elapsed, hex.EncodeToString(id))
	})
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
