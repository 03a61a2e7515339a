/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Event records shared by the BPF programs and the Go decoder
 * (receiver/ebpfreceiver/internal/probe). Every field has an explicit size
 * and the layout has no implicit padding: the Go side decodes by offset,
 * and bpf2go emits matching Go types that the probe tests compare against.
 */
#ifndef K8SSEC_EVENTS_H
#define K8SSEC_EVENTS_H

#define TASK_COMM_LEN 16

/* Event kinds: the first word of every record and the index of the loss counters. */
enum event_kind {
	EVENT_KIND_NONE = 0,
	EVENT_KIND_EXEC = 1,
	EVENT_KIND_EXIT = 2,
	EVENT_KIND_MAX = 8, /* size of the loss array; room for the kinds to come */
};

/* Sizes of the exec record's variable part. Powers of two keep the verifier's bounds simple. */
#define EXEC_FILENAME_MAX 256  /* bytes of the path handed to execve, NUL included */
#define EXEC_ARGS_MAX 4096     /* bytes of argv strings, NULs included */
#define EXEC_ARG_MAX 1024      /* bytes of any single argument, NUL included */
#define EXEC_MAX_ARGS_CAP 128  /* hard cap on max_args (the verifier unrolls nothing, but bounds the loop) */

/* exec_event.flags */
#define EXEC_FLAG_FILENAME_TRUNCATED (1 << 0)
#define EXEC_FLAG_ARGS_TRUNCATED (1 << 1) /* max_args or EXEC_ARGS_MAX cut argv */
#define EXEC_FLAG_ARGS_FAULT (1 << 2)     /* argv could not be read */

/* Common header of every record: 80 bytes. */
struct event_header {
	__u32 kind;      /* enum event_kind */
	__u32 pid;       /* thread id (kernel pid) */
	__u32 tgid;      /* process id (kernel tgid) */
	__u32 ppid;      /* parent's tgid (real_parent) */
	__u32 uid;       /* real */
	__u32 euid;      /* effective */
	__u32 gid;       /* real */
	__u32 egid;      /* effective */
	__u32 mnt_ns;    /* mount namespace inode number */
	__u32 pid_ns;    /* active pid namespace inode number */
	__u64 cgroup_id; /* cgroup v2 id (inode of the cgroup directory) */
	__u64 ktime;     /* bpf_ktime_get_boot_ns() */
	char comm[TASK_COMM_LEN];
};

/*
 * process.exec. data holds the filename (filename_len bytes, NUL included)
 * followed by argv (args_len bytes: argc NUL-terminated strings). Only the
 * used prefix of the record goes to the ring buffer:
 * offsetof(data) + filename_len + args_len bytes.
 */
struct exec_event {
	struct event_header hdr;
	__u32 filename_len;
	__u32 args_len;
	__u32 argc;
	__u32 flags;
	/* EXEC_ARG_MAX of slack after the two regions lets each bounded read start anywhere inside them. */
	char data[EXEC_FILENAME_MAX + EXEC_ARGS_MAX + EXEC_ARG_MAX];
};

/* process.exit, emitted once per process, when its last thread exits. */
struct exit_event {
	struct event_header hdr;
	__u32 exit_code; /* exit status (WEXITSTATUS) */
	__u32 signal;    /* terminating signal, 0 when it exited */
	__u32 core_dumped;
	__u32 _pad;
};

#endif /* K8SSEC_EVENTS_H */
