// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Network events: connect, accept/accept4, bind and listen from the syscalls
 * tracepoints (enter paired with exit per thread, so that the record carries
 * the result), and TCP state changes from sock:inet_sock_set_state. IPv4 and
 * IPv6 only: other families (AF_UNIX, netlink, …) are not reported.
 *
 * inet_sock_set_state often runs in softirq context, on behalf of no task
 * in particular: its records are filtered and attributed by the socket's
 * cgroup (the cgroup of the task that created it), and their process fields
 * are those of whichever task the CPU was running.
 *
 * Its own object: a kernel refusing these programs loses network events only.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const struct net_event *unused_net_event __attribute__((unused));

#include "common.h"

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* Set by the loader: the cgroup filter as an id and a depth, for the socket-side filter of tcp_state. */
const volatile __u64 cfg_cgroup_id = 0;
const volatile __u32 cfg_cgroup_level = 0;
/* 1: only the ports in ports_of_interest (remote for connect, local otherwise, either for tcp_state). */
const volatile __u8 cfg_port_filter = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} ports_of_interest SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct net_event);
} net_pending SEC(".maps");

static __always_inline bool port_wanted(__u16 port)
{
	return !cfg_port_filter || bpf_map_lookup_elem(&ports_of_interest, &port);
}

/* The sock behind fd in the current task, or NULL when fd is not a socket. */
static __always_inline struct sock *fd_sock(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *so = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(so, sk);
}

static __always_inline void read_local(struct net_event *e, struct sock *sk)
{
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (e->family == AF_INET6)
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
}

static __always_inline void read_remote(struct net_event *e, struct sock *sk)
{
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET6)
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)e->daddr, sk, __sk_common.skc_daddr);
}

/* Reads a sockaddr_in/in6 into the remote (to_remote) or local end; false for other families. */
static __always_inline bool read_sockaddr(struct net_event *e, const void *uaddr, bool to_remote)
{
	struct sockaddr_in6 sa = {};
	if (bpf_probe_read_user(&sa, sizeof(struct sockaddr_in), uaddr))
		return false;
	if (sa.sin6_family == AF_INET6 && bpf_probe_read_user(&sa, sizeof(sa), uaddr))
		return false;
	e->family = sa.sin6_family;
	__u16 port = bpf_ntohs(sa.sin6_port);
	__u8 *addr = to_remote ? e->daddr : e->saddr;
	if (sa.sin6_family == AF_INET)
		__builtin_memcpy(addr, &((struct sockaddr_in *)&sa)->sin_addr, 4);
	else if (sa.sin6_family == AF_INET6)
		__builtin_memcpy(addr, &sa.sin6_addr, 16);
	else
		return false;
	if (to_remote)
		e->dport = port;
	else
		e->sport = port;
	return true;
}

static __always_inline struct net_event *new_event(struct net_event *e, __u32 kind, __s32 fd)
{
	__builtin_memset(e, 0, sizeof(*e));
	if (!fill_header(&e->hdr, kind, (struct task_struct *)bpf_get_current_task()))
		return NULL;
	e->fd = fd;
	return e;
}

static __always_inline void keep(struct net_event *e)
{
	__u32 tid = e->hdr.pid;
	bpf_map_update_elem(&net_pending, &tid, e, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int handle_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (!new_event(&e, EVENT_KIND_NET_CONNECT, ctx->args[0]))
		return 0;
	if (!read_sockaddr(&e, (const void *)ctx->args[1], true) || !port_wanted(e.dport))
		return 0;
	keep(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_bind")
int handle_bind(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (!new_event(&e, EVENT_KIND_NET_BIND, ctx->args[0]))
		return 0;
	if (!read_sockaddr(&e, (const void *)ctx->args[1], false) || !port_wanted(e.sport))
		return 0;
	keep(&e);
	return 0;
}

/* listen and accept: the addresses come from the socket at exit. */
SEC("tracepoint/syscalls/sys_enter_listen")
int handle_listen(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (new_event(&e, EVENT_KIND_NET_LISTEN, ctx->args[0]))
		keep(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int handle_accept(struct trace_event_raw_sys_enter *ctx)
{
	struct net_event e;
	if (new_event(&e, EVENT_KIND_NET_ACCEPT, ctx->args[0]))
		keep(&e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_net")
int handle_net_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct net_event *pe = bpf_map_lookup_elem(&net_pending, &tid);
	if (!pe)
		return 0;
	struct net_event e = *pe;
	bpf_map_delete_elem(&net_pending, &tid);
	e.result = ctx->ret;

	__s32 fd = e.hdr.kind == EVENT_KIND_NET_ACCEPT ? (__s32)ctx->ret : e.fd;
	struct sock *sk = fd_sock(fd);
	if (sk) {
		e.protocol = BPF_CORE_READ(sk, sk_protocol);
		__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
		switch (e.hdr.kind) {
		case EVENT_KIND_NET_CONNECT:
			if (family == e.family)
				read_local(&e, sk);
			break;
		case EVENT_KIND_NET_LISTEN:
		case EVENT_KIND_NET_ACCEPT:
			e.family = family;
			read_local(&e, sk);
			if (e.hdr.kind == EVENT_KIND_NET_ACCEPT)
				read_remote(&e, sk);
			break;
		}
	}
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0; /* listen or accept on a socket of another family, or a failed accept */
	if ((e.hdr.kind == EVENT_KIND_NET_LISTEN || e.hdr.kind == EVENT_KIND_NET_ACCEPT) && !port_wanted(e.sport))
		return 0;
	if (emit(&e, sizeof(e)))
		count_lost(e.hdr.kind);
	return 0;
}

/* The socket's cgroup id, and whether it is at or below the filter's cgroup. */
static __always_inline bool sock_cgroup_wanted(struct sock *sk, __u64 *id)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	if (!cg)
		return !cfg_cgroup_filter;
	*id = BPF_CORE_READ(cg, kn, id);
	if (!cfg_cgroup_filter)
		return true;
	int level = BPF_CORE_READ(cg, level);
	__u32 want = cfg_cgroup_level;
	if (level < 0 || (__u32)level < want)
		return false;
	struct cgroup *anc = NULL;
	bpf_core_read(&anc, sizeof(anc), &cg->ancestors[want & 255]);
	return anc && BPF_CORE_READ(anc, kn, id) == cfg_cgroup_id;
}

SEC("tracepoint/sock/inet_sock_set_state")
int handle_tcp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (!port_wanted(ctx->sport) && !port_wanted(ctx->dport))
		return 0;
	struct sock *sk = (struct sock *)ctx->skaddr;
	__u64 cgid = 0;
	if (!sock_cgroup_wanted(sk, &cgid))
		return 0;
	struct net_event e;
	__builtin_memset(&e, 0, sizeof(e));
	bpf_get_current_comm(e.hdr.comm, sizeof(e.hdr.comm));
	fill_header_of(&e.hdr, EVENT_KIND_NET_TCP_STATE, (struct task_struct *)bpf_get_current_task());
	e.hdr.cgroup_id = cgid;
	e.family = ctx->family;
	e.protocol = ctx->protocol;
	e.sport = ctx->sport;
	e.dport = ctx->dport;
	e.fd = -1;
	e.oldstate = ctx->oldstate;
	e.newstate = ctx->newstate;
	/* Copied with a helper: the verifier refuses loads through an offset ctx pointer. */
	if (e.family == AF_INET6) {
		bpf_probe_read_kernel(e.saddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e.daddr, 16, ctx->daddr_v6);
	} else {
		bpf_probe_read_kernel(e.saddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e.daddr, 4, ctx->daddr);
	}
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_NET_TCP_STATE);
	return 0;
}
