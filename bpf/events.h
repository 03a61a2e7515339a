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
	EVENT_KIND_FILE_OPEN = 3,
	EVENT_KIND_FILE_UNLINK = 4,
	EVENT_KIND_FILE_RENAME = 5,
	EVENT_KIND_FILE_CHMOD = 6,
	EVENT_KIND_FILE_CHOWN = 7,
	EVENT_KIND_NET_CONNECT = 8,
	EVENT_KIND_NET_ACCEPT = 9,
	EVENT_KIND_NET_BIND = 10,
	EVENT_KIND_NET_LISTEN = 11,
	EVENT_KIND_NET_TCP_STATE = 12,
	EVENT_KIND_PRIV_SETUID = 13,
	EVENT_KIND_PRIV_SETGID = 14,
	EVENT_KIND_PRIV_CAPSET = 15,
	EVENT_KIND_NS_SETNS = 16,
	EVENT_KIND_NS_UNSHARE = 17,
	EVENT_KIND_NS_MOUNT = 18,
	EVENT_KIND_MODULE_LOAD = 19,
	EVENT_KIND_PTRACE = 20,
	EVENT_KIND_BPF_LOAD = 21,
	EVENT_KIND_MEMFD_CREATE = 22,
	EVENT_KIND_FORK = 23,
	EVENT_KIND_FILE_LINK = 24,
	EVENT_KIND_FILE_SYMLINK = 25,
	EVENT_KIND_PRIV_ESCALATION = 26,
	EVENT_KIND_SHELL_COMMAND = 27,
	EVENT_KIND_UPROBE = 28,
	EVENT_KIND_NET_SOCKET = 29, /* network.socket: a packet or raw socket created */
	EVENT_KIND_FD_DUP = 30,     /* process.fd_dup: a socket duplicated onto fd 0, 1 or 2 */
	EVENT_KIND_MAX = 32, /* size of the loss array; room for the kinds to come */
};

/* Sizes of the exec record's variable part. Powers of two keep the verifier's bounds simple. */
#define EXEC_FILENAME_MAX 256  /* bytes of the path handed to execve, NUL included */
#define EXEC_ARGS_MAX 4096     /* bytes of argv strings, NULs included */
#define EXEC_ARG_MAX 1024      /* bytes of any single argument, NUL included */
#define EXEC_MAX_ARGS_CAP 128  /* hard cap on max_args (the verifier unrolls nothing, but bounds the loop) */
#define EXEC_CWD_MAX 256       /* bytes of the working directory, NUL included */
#define EXEC_CWD_DEPTH 24      /* directories walked up from the working directory */
#define EXEC_EXE_MAX 256       /* bytes of the executable's resolved path, NUL included */
#define EXEC_EXE_DEPTH 24      /* directories walked up from the executable */

/* exec_event.flags */
#define EXEC_FLAG_FILENAME_TRUNCATED (1 << 0)
#define EXEC_FLAG_ARGS_TRUNCATED (1 << 1) /* max_args or EXEC_ARGS_MAX cut argv */
#define EXEC_FLAG_ARGS_FAULT (1 << 2)     /* argv could not be read */
#define EXEC_FLAG_MEMFD (1 << 3)          /* the executable is a memfd (its dentry is "memfd:…"): fileless */
#define EXEC_FLAG_KILLED_PATH (1 << 4)    /* enforcement: SIGKILL sent, the executable is a kill path's (EXEC_FLAG_BY_FILE says how) */
#define EXEC_FLAG_KILLED_COMM (1 << 5)    /* enforcement: SIGKILL sent, the comm is in enforce_comms */
#define EXEC_FLAG_DRIFT (1 << 6)          /* the executable was created or truncated since the probe started (created_files) */
#define EXEC_FLAG_DENIED (1 << 7)         /* enforcement: BPF LSM refused the exec (EPERM): the executable is denied (EXEC_FLAG_BY_FILE says how) */
#define EXEC_FLAG_BY_FILE (1 << 8)        /* enforcement matched the executable's file identity (inode); else its resolved path */
#define EXEC_FLAG_TTY (1 << 9)            /* the process has a controlling terminal (signal->tty): a person at a terminal, kubectl exec -t */

#define SIGKILL_NR 9

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
	/* The process's start (its group leader's start_boottime, CLOCK_BOOTTIME ns):
	 * with tgid, names the process across PID reuse; /proc/<pid>/stat's starttime
	 * is this in clock ticks. */
	__u64 start_time;
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
	/* The working directory, built from its end: cwd[cwd_off:] up to the NUL.
	 * cwd_off == EXEC_CWD_MAX: unknown (deeper than EXEC_CWD_DEPTH, or too long). */
	__u32 cwd_off;
	/* The executable (bprm->file: for a script, its interpreter) as the kernel
	 * resolved it, walked up to the process's root: exe[exe_off:]; exe_off ==
	 * EXEC_EXE_MAX: unknown. */
	__u32 exe_off;
	char cwd[EXEC_CWD_MAX];
	char exe[EXEC_EXE_MAX];
	__u64 exe_ino; /* the executable's inode and device (MKDEV: major << 20 | minor) */
	__u32 exe_dev;
	__u32 _pad;
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

/* process.fork: a new process (not a thread); the header is the parent's. */
struct fork_event {
	struct event_header hdr;
	__u32 child_tgid;
	__u32 _pad;
};

/* A file by inode: the key of created_files. */
struct file_id {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};

/* Bytes of a path a file record keeps, NUL included; also the LPM key's data size (the kernel's maximum). */
#define FILE_PATH_MAX 256
#define FILE_PATH_DEPTH 32 /* directories walked up from an opened file */

/* file_event.file_flags */
#define FILE_FLAG_RESOLVED (1 << 0)   /* path is the opened file's, as the kernel resolved it (walk_path) */
#define FILE_FLAG_INODE_MATCH (1 << 1) /* reported because the file's inode is in file_inodes (a hard link) */

/*
 * Which kernel-function hook sent a record (kprobe.bpf.c): file_event.hook,
 * net_event.hook and escalation_event.hook. HOOK_NONE: a syscall tracepoint.
 */
enum hook_id {
	HOOK_NONE = 0,
	HOOK_COMMIT_CREDS = 1,
	HOOK_SECURITY_FILE_OPEN = 2,
	HOOK_TCP_CONNECT = 3,
	HOOK_INET_CSK_ACCEPT = 4,
	HOOK_MAX = 8, /* size of the per-hook counters */
};

/*
 * file.open, file.unlink, file.rename, file.chmod, file.chown, file.link,
 * file.symlink.
 *
 * Opens (open, openat, openat2, creat) are judged at sys_exit on the file the
 * kernel opened: its path walked from the new fd's struct file (FILE_FLAG_RESOLVED),
 * whatever string named it (relative, dirfd, "..", "//", a symlink), and its
 * inode. data holds that path, then the string the caller passed (raw_len
 * bytes). A failed open has no file: it is judged on the caller's string, when
 * absolute, and path is that string.
 *
 * The others are judged at sys_enter_* on the caller's string, when absolute:
 * path is the file named (rename: the old name; link, symlink: the new name),
 * target the other path (rename: the new name; link: the existing file;
 * symlink: its target, when absolute). Only the used prefix goes to the ring.
 */
struct file_event {
	struct event_header hdr;
	__s64 result;    /* the syscall's return value: an fd or 0, or -errno */
	__u32 flags;     /* open: the open flags; unlinkat: AT_REMOVEDIR; renameat2: RENAME_*; fchownat/fchmodat2: AT_* */
	__u32 mode;      /* open: the create mode; chmod: the new mode */
	__u32 owner;     /* chown: the new uid ((u32)-1: unchanged) */
	__u32 group;     /* chown: the new gid ((u32)-1: unchanged) */
	__u32 path_len;
	__u32 target_len;
	__u64 ino;        /* open: the opened file's inode; 0 when unresolved */
	__u32 dev;        /* open: its device, as the kernel encodes it (major << 20 | minor) */
	__u32 raw_len;    /* open: bytes of the caller's string after path and target; 0: none */
	__u32 file_flags; /* FILE_FLAG_* */
	__u32 hook;       /* enum hook_id: HOOK_SECURITY_FILE_OPEN for an open no syscall tracepoint saw */
	char data[3 * FILE_PATH_MAX];
};

/*
 * network.connect, network.accept, network.bind, network.listen: built at
 * sys_enter_* (connect and bind: from the sockaddr the caller passed),
 * completed at sys_exit_* with the result and what the socket says (its
 * protocol, and its addresses where the call set them: connect's local end,
 * listen's, and accept's new socket). network.tcp_state: from
 * sock:inet_sock_set_state. Ports are in host order; addresses in network
 * order (4 bytes used for AF_INET).
 *
 *   kind      local (saddr, sport)        remote (daddr, dport)
 *   connect   the client end (after it)   the server connected to
 *   accept    the server end              the client accepted
 *   bind      the address bound           -
 *   listen    the listening address       -
 *   tcp_state the socket's local end      its peer
 */
struct net_event {
	struct event_header hdr;
	__s64 result; /* the syscall's return value (accept: the new fd), or -errno; tcp_state: 0 */
	__u16 family; /* AF_INET or AF_INET6; connect: AF_UNIX too (a net_unix_event, below) */
	__u16 protocol; /* IPPROTO_TCP, IPPROTO_UDP, …; 0 when unknown */
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__s32 fd; /* the socket's fd (accept: the listening one) */
	__s32 oldstate; /* tcp_state: TCP_* */
	__s32 newstate;
	__u32 hook; /* enum hook_id: HOOK_TCP_CONNECT or HOOK_INET_CSK_ACCEPT for a connection no syscall tracepoint saw */
};

/* Which syscall a priv_event comes from (priv_event.op). */
enum priv_op {
	PRIV_OP_SETUID = 1,
	PRIV_OP_SETREUID = 2,
	PRIV_OP_SETRESUID = 3,
	PRIV_OP_SETGID = 4,
	PRIV_OP_SETREGID = 5,
	PRIV_OP_SETRESGID = 6,
	PRIV_OP_CAPSET = 7,
	PRIV_OP_SETNS = 8,
	PRIV_OP_UNSHARE = 9,
	PRIV_OP_CLONE = 10,
	PRIV_OP_CLONE3 = 11,
	PRIV_OP_MOUNT = 12,
	PRIV_OP_INIT_MODULE = 13,
	PRIV_OP_FINIT_MODULE = 14,
	PRIV_OP_PTRACE = 15,
	PRIV_OP_BPF = 16,
	PRIV_OP_MEMFD_CREATE = 17,
};

#define PRIV_STR_MAX 256

/*
 * privilege.*, namespace.*, kernel.*, process.ptrace, process.memfd_create:
 * built at sys_enter_*, sent at sys_exit_* with the result. The header holds
 * the ids before the call. args are the syscall's, as the caller passed them,
 * but for capset (args[0..2]: effective, permitted, inheritable as 64-bit
 * sets; args[3]: the target pid), clone3 (args[0]: clone_args.flags) and bpf
 * (args[1]: prog_type, args[2]: insn_cnt). name: mount's fstype, bpf's
 * prog_name. str1: mount's target, memfd_create's name; str2: mount's source.
 */
struct priv_event {
	struct event_header hdr;
	__s64 result;
	__u32 op; /* enum priv_op */
	__u32 _pad;
	__u64 args[6];
	char name[32];
	char str1[PRIV_STR_MAX];
	char str2[PRIV_STR_MAX];
};

/* escalation_event.flags */
#define ESCALATION_FLAG_KILLED (1 << 0) /* enforcement: SIGKILL sent to the task */
#define ESCALATION_FLAG_EXEC (1 << 1)   /* during an execve whose executable is not set-uid to the new euid */
#define ESCALATION_FLAG_COMPAT (1 << 2) /* the task was in a 32-bit (ia32) syscall: syscall is of that table */

#define ESCALATION_NO_SYSCALL 0xffffffff /* escalation_event.syscall: in no syscall */

/*
 * privilege.escalation, from commit_creds (kprobe.bpf.c): the task's new
 * credentials have uid or euid 0 while its old ones had not, and it is not in
 * a syscall that grants that (setuid & co; an execve only when the executable
 * is set-uid to the new euid). The header holds the old ids.
 */
struct escalation_event {
	struct event_header hdr;
	__u32 new_uid;
	__u32 new_euid;
	__u32 new_gid;
	__u32 new_egid;
	__u32 syscall; /* the number of the syscall the task is in; ESCALATION_NO_SYSCALL: none */
	__u32 flags;   /* ESCALATION_FLAG_* */
	__u32 hook;    /* HOOK_COMMIT_CREDS */
	__u32 _pad;
};

/* Bytes of a shell command line a shell_event keeps, NUL included. */
#define SHELL_COMMAND_MAX 1024

/* shell_event.flags */
#define SHELL_FLAG_TRUNCATED (1 << 0) /* the line was longer than SHELL_COMMAND_MAX - 1 bytes */

/*
 * process.shell_command: a line an interactive bash read (the return of its
 * readline). Only the used prefix goes to the ring:
 * offsetof(command) + len bytes.
 */
struct shell_event {
	struct event_header hdr;
	__u32 len; /* bytes of command, NUL included */
	__u32 flags;
	char command[SHELL_COMMAND_MAX];
};

#define UPROBE_MAX_ARGS 4
#define UPROBE_STR_MAX 128 /* bytes of a string argument, NUL included */

/* uprobe_config.types[i] */
enum uprobe_arg_type {
	UPROBE_ARG_NONE = 0,
	UPROBE_ARG_INT = 1,
	UPROBE_ARG_STRING = 2, /* a NUL-terminated string in user memory */
};

/* What a configured uprobe reads, by its index (the attach cookie). */
struct uprobe_config {
	__u8 types[UPROBE_MAX_ARGS]; /* enum uprobe_arg_type; a return probe: types[0] is the return value's */
};

/* uprobe_event.flags: bit i (truncated) or UPROBE_MAX_ARGS + i (unreadable) for argument i. */
#define UPROBE_FLAG_TRUNCATED(i) (1 << (i))
#define UPROBE_FLAG_FAULT(i) (1 << (UPROBE_MAX_ARGS + (i)))

/*
 * process.uprobe: a configured uprobe (or uretprobe) fired. probe is the
 * index of the uprobe in the loader's list. args hold the raw register values
 * (a string's pointer); strs the strings read for string arguments.
 */
struct uprobe_event {
	struct event_header hdr;
	__u32 probe;
	__u32 flags;
	__u64 args[UPROBE_MAX_ARGS];
	char strs[UPROBE_MAX_ARGS][UPROBE_STR_MAX];
};

/*
 * network.connect to an AF_UNIX socket: a net_event (family AF_UNIX, no
 * addresses or ports) followed by the socket's name. A connect that reached a
 * socket (the peer the kernel found) names it by the peer's own path, walked
 * from its dentry (UNIX_FLAG_RESOLVED): whatever string the caller passed (a
 * symlink, /proc/<pid>/root/…, a relative path) gives the socket's real path.
 * Otherwise (a failed connect) path is the caller's sun_path. An abstract
 * name (UNIX_FLAG_ABSTRACT) is path_len bytes without its leading NUL, and
 * may hold NULs.
 */
#define UNIX_PATH_MAX_REC 256
#define UNIX_FLAG_RESOLVED (1 << 0)
#define UNIX_FLAG_ABSTRACT (1 << 1)

struct net_unix_event {
	struct net_event net;
	__u32 path_len; /* bytes of path used, no NUL */
	__u32 unix_flags; /* UNIX_FLAG_* */
	__u32 sock_type;  /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	__u32 _pad;
	char path[UNIX_PATH_MAX_REC];
};

/*
 * network.socket: a socket of family AF_PACKET, or of type SOCK_RAW or
 * SOCK_PACKET in any family, asked for at sys_enter_socket; family, type and
 * protocol are the created socket's own (read from it at sys_exit), else the
 * caller's arguments (a failed call). protocol: the socket's (AF_PACKET: the
 * caller's, the ethertype in network order, e.g. 0x0300 for ETH_P_ALL).
 */
struct socket_event {
	struct event_header hdr;
	__s64 result; /* the new fd, or -errno */
	__u32 family;
	__u32 type;   /* without SOCK_NONBLOCK/SOCK_CLOEXEC */
	__u32 protocol;
	__u32 _pad;
};

/*
 * process.fd_dup: dup2, dup3, dup or fcntl(F_DUPFD[_CLOEXEC]) whose new fd is
 * 0, 1 or 2 and now refers to a socket: a shell's stdin/stdout/stderr wired to
 * a connection. Judged at sys_exit on the new fd's file. For AF_INET and
 * AF_INET6 the socket's ends are read as network.* records have them (saddr,
 * sport: local; daddr, dport: the peer).
 */
enum dup_op {
	DUP_OP_DUP = 1,
	DUP_OP_DUP2 = 2,
	DUP_OP_DUP3 = 3,
	DUP_OP_FCNTL = 4,
};

struct fd_dup_event {
	struct event_header hdr;
	__s64 result; /* the new fd, or -errno */
	__s32 oldfd;
	__s32 newfd;  /* the result */
	__u32 op;     /* enum dup_op */
	__u16 family; /* the socket's */
	__u16 protocol;
	__u32 sock_type;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/*
 * file.open of a file that matters whatever file_prefixes say (container
 * escapes, reading another process's memory): recognised in the kernel on the
 * opened file's dentry and superblock, never on the caller's string.
 * file_event.file_flags carries the kind in FILE_SENSITIVE_MASK; for
 * proc_mem and proc_environ, file_event.owner holds the target process's
 * tgid (an open has no owner otherwise: it is NOID).
 */
#define FILE_SENSITIVE_SHIFT 24
#define FILE_SENSITIVE_MASK (0xffu << FILE_SENSITIVE_SHIFT)
enum file_sensitive {
	FILE_SENSITIVE_RELEASE_AGENT = 1,     /* cgroup v1 release_agent, opened for writing */
	FILE_SENSITIVE_NOTIFY_ON_RELEASE = 2, /* cgroup v1 notify_on_release, opened for writing */
	FILE_SENSITIVE_CORE_PATTERN = 3,      /* procfs sys/kernel/core_pattern, opened for writing */
	FILE_SENSITIVE_PROC_MEM = 4,          /* procfs <pid>/mem or <pid>/task/<tid>/mem */
	FILE_SENSITIVE_PROC_ENVIRON = 5,      /* procfs <pid>/environ or <pid>/task/<tid>/environ */
	FILE_SENSITIVE_KCORE = 6,             /* procfs kcore */
};

#endif /* K8SSEC_EVENTS_H */
