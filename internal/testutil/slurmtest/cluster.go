package slurmtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The ports of slurmctld and slurmd when they are free (2024, an example
// in Slurm's docs, is taken on these machines).
const (
	defaultCtldPort = 16817
	defaultDPort    = 16818
)

// startWithin bounds each step of Start: a daemon that is not up by then
// has failed, and its log says why.
const startWithin = 20 * time.Second

// Commands are the programs a cluster needs, Debian's packages in brackets.
var Commands = []string{
	"munged",    // munge
	"slurmctld", // slurmctld
	"slurmd",    // slurmd
	"sbatch",    // slurm-client
	"squeue",    // slurm-client
	"scontrol",  // slurm-client
	"scancel",   // slurm-client
}

// Cluster is a running one-node cluster.
type Cluster struct {
	Dir  string // the cluster's folder: slurm.conf, munge key and socket, state, spool, logs
	Conf string // slurm.conf: SLURM_CONF of the client commands
	Node string // the node's name, the machine's short host name
	CPUs int    // the node's CPUs, as slurmd -C counts them

	// Started is how long Start took, from the first daemon to the node
	// reported idle.
	Started time.Duration

	daemons  []*daemon
	stopOnce sync.Once
}

// daemon is one started process and its exit.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string      // its log file
	done chan error  // receives Wait's result once
	err  *exitResult // set when done was read
}

type exitResult struct{ err error }

// Missing lists the Commands not on $PATH.
func Missing() []string {
	var miss []string
	for _, c := range Commands {
		if _, err := lookPath(c); err != nil {
			miss = append(miss, c)
		}
	}
	return miss
}

// lookPath finds a command on $PATH or in the sbin folders, which a
// non-login root shell may lack on its $PATH.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("slurmtest: %s is not installed", name)
}

// Start starts a cluster for t and stops it when t ends. t skips when
// Slurm or MUNGE is not installed, or the test does not run as root
// (slurmd launches jobs as their user). Any other failure fails t with the
// daemon's log.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if miss := Missing(); len(miss) > 0 {
		t.Skipf("slurmtest: Slurm is not installed (missing %s): `make setup` installs Debian's slurmctld, slurmd, slurm-client and munge", strings.Join(miss, ", "))
	}
	if os.Geteuid() != 0 {
		t.Skip("slurmtest: the one-node Slurm cluster needs root (slurmd starts jobs as their user; SlurmUser=root)")
	}
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "slurmtest-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf")}
	t.Cleanup(func() { c.Stop(t) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"munge", "run", "state", "spool", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "munge"), 0o700); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 128)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "munge", "munge.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "munge.sock")
	c.startDaemon(t, "munged", filepath.Join(dir, "log", "munged.log"), "-F",
		"--key-file="+filepath.Join(dir, "munge", "munge.key"), "--socket="+sock,
		"--pid-file="+filepath.Join(dir, "run", "munged.pid"), "--log-file="+filepath.Join(dir, "log", "munged.log"),
		"--seed-file="+filepath.Join(dir, "munge", "munged.seed"))
	c.waitUntil(t, "munged", func() bool {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	c.Node, _, _ = strings.Cut(host, ".")
	nodeLine := c.nodeLine(t)
	// From choosing the ports until both daemons hold them, no other
	// cluster (a parallel test, another test binary) may choose.
	unlock := lockPorts(t)
	defer unlock()
	ctldPort, dPort := freePorts(t)
	conf := fmt.Sprintf(`# A one-node test cluster (internal/testutil/slurmtest).
ClusterName=tlearntest
SlurmctldHost=%[1]s(127.0.0.1)
SlurmctldPort=%[2]d
SlurmdPort=%[3]d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%[4]s
StateSaveLocation=%[5]s/state
SlurmdSpoolDir=%[5]s/spool
SlurmctldPidFile=%[5]s/run/slurmctld.pid
SlurmdPidFile=%[5]s/run/slurmd.pid
SlurmctldLogFile=%[5]s/log/slurmctld.log
SlurmdLogFile=%[5]s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=86400
KillWait=5
%[6]s NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=%[1]s Default=YES MaxTime=INFINITE State=UP
`, c.Node, ctldPort, dPort, sock, dir, nodeLine)
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	c.startDaemon(t, "slurmctld", filepath.Join(dir, "log", "slurmctld.log"), "-D", "-i")
	c.waitUntil(t, "slurmctld", func() bool { return dialable(ctldPort) })
	c.startDaemon(t, "slurmd", filepath.Join(dir, "log", "slurmd.log"), "-D", "-N", c.Node)
	c.waitUntil(t, "slurmd", func() bool { return dialable(dPort) })
	unlock()
	c.waitUntil(t, "slurmd", func() bool {
		out, err := c.Command("scontrol", "show", "node", "-o", c.Node).Output()
		return err == nil && bytes.Contains(out, []byte("State=IDLE "))
	})
	c.Started = time.Since(t0)
	return c
}

// lockPorts takes the machine-wide lock of port choosing (a flock on
// os.TempDir()/slurmtest-ports.lock, waiting for it) and returns its
// release, which may be called more than once.
func lockPorts(t testing.TB) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "slurmtest-ports.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("slurmtest: lock %s: %v", f.Name(), err)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }
}

// nodeLine is `slurmd -C`'s NodeName line, the hardware slurmd will find,
// with the node's name.
func (c *Cluster) nodeLine(t testing.TB) string {
	t.Helper()
	bin, err := lookPath("slurmd")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-C").Output()
	if err != nil {
		t.Fatalf("slurmtest: slurmd -C: %v", err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "NodeName=") {
		t.Fatalf("slurmtest: slurmd -C printed %q, not a NodeName line", out)
	}
	f[0] = "NodeName=" + c.Node
	for _, kv := range f[1:] {
		if v, ok := strings.CutPrefix(kv, "CPUs="); ok {
			c.CPUs, _ = strconv.Atoi(v)
		}
	}
	return strings.Join(f, " ")
}

// freePorts returns 16817 and 16818 when both are free, else two ports
// the kernel picks (another cluster of a parallel test holds them).
func freePorts(t testing.TB) (ctld, d int) {
	t.Helper()
	if bindable(defaultCtldPort) && bindable(defaultDPort) {
		return defaultCtldPort, defaultDPort
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatalf("slurmtest: no free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1]
}

// bindable reports whether the port is free on every address, as
// slurmctld and slurmd bind it.
func bindable(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func dialable(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// startDaemon starts name (in the foreground: a child of the test) with
// the cluster's environment; its stdout and stderr go to log's
// ".stderr" sibling, since messages before the log file opens (a bad
// configuration, a port in use) go only there.
func (c *Cluster) startDaemon(t testing.TB, name, log string, args ...string) {
	t.Helper()
	bin, err := lookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(log + ".stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = c.Env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = c.Dir
	// Pdeathsig: a test binary killed by its -timeout takes the daemons
	// with it. Setpgid: a Ctrl-C in the terminal reaches the test, whose
	// cleanup stops them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("slurmtest: start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	c.daemons = append(c.daemons, d)
}

// waitUntil polls ready until it holds; it fails t with the last daemon's
// logs when that daemon exits first or startWithin passes.
func (c *Cluster) waitUntil(t testing.TB, what string, ready func() bool) {
	t.Helper()
	d := c.daemons[len(c.daemons)-1]
	deadline := time.Now().Add(startWithin)
	for delay := time.Millisecond; !ready(); delay = min(2*delay, 50*time.Millisecond) {
		if d.exited() {
			t.Fatalf("slurmtest: %s exited while starting (%v):\n%s", d.name, d.err.err, d.logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("slurmtest: %s not ready after %v:\n%s", what, startWithin, d.logs())
		}
		time.Sleep(delay)
	}
}

// exited reports whether the daemon has exited, without waiting.
func (d *daemon) exited() bool {
	if d.err != nil {
		return true
	}
	select {
	case err := <-d.done:
		d.err = &exitResult{err}
		return true
	default:
		return false
	}
}

// logs is the end of the daemon's log and of its stderr.
func (d *daemon) logs() string {
	var b strings.Builder
	for _, p := range []string{d.log + ".stderr", d.log} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", p, data)
	}
	return b.String()
}

// Stop cancels every job, stops the daemons (slurmd, slurmctld, munged)
// by their pids, kills any process left that runs under this cluster (its
// environment holds SLURM_CONF=c.Conf) and removes the cluster's folder,
// which it keeps, with the daemons' logs, when t has failed. Start
// registers it with t.Cleanup; a second call does nothing.
func (c *Cluster) Stop(t testing.TB) {
	c.stopOnce.Do(func() { c.stop(t) })
}

func (c *Cluster) stop(t testing.TB) {
	defer func() {
		if !t.Failed() {
			os.RemoveAll(c.Dir)
			return
		}
		t.Logf("slurmtest: the cluster's logs are kept in %s", c.Dir)
	}()
	if len(c.daemons) == 3 && !c.daemons[1].exited() {
		if u, err := user.Current(); err == nil {
			_ = c.Command("scancel", "--user="+u.Username).Run()
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				out, err := c.Command("squeue", "-h", "-o", "%i").Output()
				if err != nil || len(bytes.TrimSpace(out)) == 0 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	for i := len(c.daemons) - 1; i >= 0; i-- {
		d := c.daemons[i]
		if d.exited() {
			if t.Failed() {
				t.Logf("slurmtest: %s had exited (%v):\n%s", d.name, d.err.err, d.logs())
			}
			continue
		}
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-d.done:
			d.err = &exitResult{err}
		case <-time.After(5 * time.Second):
			_ = d.cmd.Process.Kill()
			d.err = &exitResult{<-d.done}
			t.Errorf("slurmtest: %s (pid %d) ignored SIGTERM for 5 s and was killed", d.name, d.cmd.Process.Pid)
		}
	}
	if t.Failed() {
		for _, d := range c.daemons {
			t.Logf("slurmtest: %s", d.logs())
		}
	}
	for _, pid := range c.strays() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}

// strays are the pids of the processes whose environment names this
// cluster's configuration (slurmstepd, jobs), the test's own excepted.
func (c *Cluster) strays() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	mark := []byte("SLURM_CONF=" + c.Conf + "\x00")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, mark) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Env is the environment of the cluster's commands: the test's, less any
// SLURM_ variable (a test run inside a Slurm job), with SLURM_CONF.
func (c *Cluster) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLURM_") {
			env = append(env, kv)
		}
	}
	return append(env, "SLURM_CONF="+c.Conf)
}

// Command is a client command (sbatch, squeue, scontrol, scancel, sinfo)
// run against the cluster.
func (c *Cluster) Command(name string, args ...string) *exec.Cmd {
	bin, err := lookPath(name)
	if err != nil {
		bin = name
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = c.Env()
	return cmd
}

// Run runs a client command to its end and returns its stdout; a failure
// fails t with its stderr.
func (c *Cluster) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := c.Command(name, args...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("slurmtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, errs.String())
	}
	return out.String()
}

// Submit runs `sbatch --parsable ARGS` (options, then the script and its
// arguments) and returns the job's id.
func (c *Cluster) Submit(t testing.TB, args ...string) string {
	t.Helper()
	out := c.Run(t, "sbatch", append([]string{"--parsable"}, args...)...)
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if _, err := strconv.Atoi(id); err != nil {
		t.Fatalf("slurmtest: sbatch printed %q, not a job id", out)
	}
	return id
}

// ErrNoJob is returned by Tasks for a job id the controller does not know.
var ErrNoJob = errors.New("slurmtest: no such job")
