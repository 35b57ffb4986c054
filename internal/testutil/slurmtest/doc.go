// Package slurmtest starts a real one-node Slurm cluster on localhost for a
// test: Debian's munged, slurmctld and slurmd (scripts/setup.sh installs
// them), configured in a folder of the test's own, stopped by their pids
// when the test ends. The tests of the sharded caching job (cmd/tlearn) and
// of this package submit real sbatch arrays to it.
//
// It owns starting and stopping that cluster, the environment of the client
// commands (SLURM_CONF), and the few job helpers the tests share: Submit,
// Wait and WaitFor, Tasks (each array task's state, reason and exit code),
// TaskPIDs, CancelTask and KillTask. A test on a machine without Slurm
// skips with a message naming the missing commands. Only tests import it:
// production code must not, and it imports no tlearn package.
//
// What it took to start Slurm 22.05 (Debian 12) here, in about 0.1 s (60 to
// 100 ms from the first daemon to the node idle, on two cores):
//
//   - munged refuses a socket whose folder, or any folder above it, is not
//     searchable by everyone ("Socket is inaccessible: execute permissions
//     for all required"), and a key file or key folder that others may
//     read. t.TempDir's folders are 0700, so the cluster lives in a folder
//     of its own under os.TempDir (mode 0755; key folder 0700, key 0600),
//     which also keeps the socket's path under the 108 bytes a Unix socket
//     may have. As root it needs no --force; -F keeps it in the foreground,
//     a child of the test.
//   - AuthInfo=socket=PATH points slurmctld, slurmd, slurmstepd and the
//     client commands at that munged (auth/munge and cred/munge read it).
//   - slurmctld -D -i (foreground, no saved state) and slurmd -D -N NODE.
//     The node's line is `slurmd -C`'s (its CPUs, sockets, cores and
//     memory), so slurmd finds the hardware it was told and the node does
//     not drain. ProctrackType=proctrack/linuxproc and TaskPlugin=task/none
//     need no cgroup setup; slurmd's complaint that it cannot load PMIx is
//     harmless (MpiDefault=none).
//   - slurmd registers at once only when slurmctld already listens (else
//     it retries a second later), and a client command retries its
//     connection after a second too: Start dials slurmctld's port before it
//     starts slurmd and asks for the node's state.
//   - The default scheduling waits up to 3 s after a submission
//     (batch_sched_delay) and backfill runs on its own timer: sched/builtin
//     with batch_sched_delay=0 starts a job within about a second.
//   - Without slurmdbd, sacct has nothing to read (accounting storage is
//     off): job states come from `scontrol show job`, and MinJobAge keeps a
//     finished job's record for a day instead of 300 s.
//   - Port 2024 is taken on these machines; the cluster takes 16817 and
//     16818 when free, else two ports the kernel picks. Choosing is
//     serialized machine-wide (a flock on os.TempDir()/slurmtest-ports.lock
//     held until both daemons listen): `go test ./...` runs the packages
//     that start clusters at the same time, and two clusters that both saw
//     16818 free lost one slurmd to "Address already in use". A daemon that
//     still cannot bind fails the test with its log.
//   - Each daemon gets Pdeathsig SIGKILL, so a test binary killed by its
//     timeout does not leave them running (Pdeathsig follows the OS thread
//     that started the daemon, which Go ends only under LockOSThread, which
//     no tlearn test uses); t.Cleanup cancels every job,
//     stops the daemons with SIGTERM (SIGKILL after 5 s) and kills, by pid,
//     any process left whose environment holds this cluster's SLURM_CONF
//     (slurmstepd and the jobs' processes).
package slurmtest
