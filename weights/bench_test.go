package weights_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// The broadcast benchmarks move one generated checkpoint: model.safetensors of
// TSD_WEIGHTS_BENCH_BYTES random bytes (default 3.1 GB, the size of Qwen2.5-1.5B in bf16) plus
// a config and a tokenizer, under TSD_WEIGHTS_BENCH_DIR (default the system temp directory).
// Everything is deleted when the benchmarks end.
const (
	benchBytesEnv   = "TSD_WEIGHTS_BENCH_BYTES"
	benchDirEnv     = "TSD_WEIGHTS_BENCH_DIR"
	benchBytesDflt  = 3_100_000_000
	benchVersion    = 1
	benchFetchers   = 4
	benchRandomSeed = 42
)

// benchFixture is the learner's side of the broadcast benchmarks.
type benchFixture struct {
	root     string // everything the benchmarks write is under here
	store    *weights.Store
	manifest *tsdv1.WeightManifest
	size     int64 // sum of the file sizes
}

var bench struct {
	once sync.Once
	f    *benchFixture
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.f != nil {
		os.RemoveAll(bench.f.root)
	}
	os.Exit(code)
}

// benchCheckpoint generates the checkpoint once per test binary and puts it in a learner store.
func benchCheckpoint(b *testing.B) *benchFixture {
	bench.once.Do(func() { bench.f, bench.err = newBenchFixture() })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.f
}

func newBenchFixture() (*benchFixture, error) {
	size := int64(benchBytesDflt)
	if s := os.Getenv(benchBytesEnv); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive byte count", benchBytesEnv, s)
		}
		size = n
	}
	root, err := os.MkdirTemp(os.Getenv(benchDirEnv), "tsd-weights-bench-")
	if err != nil {
		return nil, err
	}
	src := filepath.Join(root, "src")
	if err := writeRandomCheckpoint(src, size); err != nil {
		return nil, err
	}
	store, err := weights.OpenStore(filepath.Join(root, "learner"))
	if err != nil {
		return nil, err
	}
	m, err := store.Put(benchVersion, src)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(src); err != nil {
		return nil, err
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	return &benchFixture{root: root, store: store, manifest: m, size: total}, nil
}

// writeRandomCheckpoint writes a checkpoint with a random model.safetensors of size bytes.
func writeRandomCheckpoint(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string]string{
		"config.json":    `{"model_type":"qwen2","hidden_size":1536,"torch_dtype":"bfloat16"}`,
		"tokenizer.json": `{"version":"1.0"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{benchRandomSeed})
	if _, err := io.CopyN(f, rng, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BenchmarkManifest hashes the checkpoint as Manifest does (from the page cache after the first
// run): its rate is the cost of one file-digest (BLAKE3) pass, which a broadcast pays once per
// byte (the fetcher's file check; chunks are checked with CRC-32C) and a learner once per
// published version.
func BenchmarkManifest(b *testing.B) {
	f := benchCheckpoint(b)
	b.SetBytes(f.size)
	for b.Loop() {
		m, err := weights.Manifest(f.store.Dir(benchVersion), benchVersion)
		if err != nil {
			b.Fatal(err)
		}
		if m.Sha256 != f.manifest.Sha256 {
			b.Fatalf("digest %s, want %s", m.Sha256, f.manifest.Sha256)
		}
	}
}

// BenchmarkBroadcast sends the checkpoint from one learner to 1, 2 and 4 concurrent fetchers over
// TCP loopback, three ways in the same run:
//
//   - grpc: weights.Fetch over gRPC, every chunk and file verified, written into each fetcher's
//     store and synced: the real thing.
//   - raw: the same files over a plain TCP connection per reader (sendfile(2) on the sending
//     side), each reader writing them to a file in its own directory and syncing it: the least
//     any transfer to disk must do.
//   - wire: as raw, but the readers discard the bytes: the loopback's ceiling.
//
// Rates are aggregate payload MB/s (all fetchers together); learner_egress_MB is what the gRPC
// server sent per broadcast.
func BenchmarkBroadcast(b *testing.B) {
	f := benchCheckpoint(b)
	for _, n := range []int{1, 2, benchFetchers} {
		b.Run(fmt.Sprintf("fetchers=%d", n), func(b *testing.B) {
			var wire, raw, fetched measure
			var egress int64
			for b.Loop() {
				dirs, clean := fetcherDirs(b, f, n)
				wire.add(func() { rawBroadcast(b, f, n, nil) })
				raw.add(func() { rawBroadcast(b, f, n, dirs) })
				clean()
				dirs, clean = fetcherDirs(b, f, n)
				dst := stores(b, dirs)
				fetched.add(func() { egress += grpcBroadcast(b, f, dst) })
				clean()
			}
			bytes := f.size * int64(n*b.N)
			b.ReportMetric(wire.mbps(bytes), "wire_MB/s")
			b.ReportMetric(raw.mbps(bytes), "raw_MB/s")
			b.ReportMetric(fetched.mbps(bytes), "grpc_MB/s")
			b.ReportMetric(raw.wall.Seconds()/fetched.wall.Seconds(), "grpc/raw")
			b.ReportMetric(raw.cpuPerByte(bytes), "raw_cpu_ns/B")
			b.ReportMetric(fetched.cpuPerByte(bytes), "grpc_cpu_ns/B")
			b.ReportMetric(float64(egress)/float64(b.N)/1e6, "learner_egress_MB")
		})
	}
}

// BenchmarkRelay broadcasts the checkpoint the way the coordinator would arrange it: the first
// fetcher gets it from the learner, and in every later round each fetcher that holds it serves
// one that does not (1, 2, 4 fetchers take 1, 2, 3 rounds). The learner sends one copy however
// many fetchers there are; relay_MB/s is the aggregate rate over all rounds.
func BenchmarkRelay(b *testing.B) {
	f := benchCheckpoint(b)
	for _, n := range []int{1, 2, benchFetchers} {
		b.Run(fmt.Sprintf("fetchers=%d", n), func(b *testing.B) {
			var relay measure
			var learnerEgress, peerEgress int64
			for b.Loop() {
				dirs, clean := fetcherDirs(b, f, n)
				dst := stores(b, dirs)
				relay.add(func() {
					l, p := relayBroadcast(b, f, dst)
					learnerEgress += l
					peerEgress = max(peerEgress, p)
				})
				clean()
			}
			bytes := f.size * int64(n*b.N)
			b.ReportMetric(relay.mbps(bytes), "relay_MB/s")
			b.ReportMetric(relay.cpuPerByte(bytes), "relay_cpu_ns/B")
			b.ReportMetric(float64(learnerEgress)/float64(b.N)/1e6, "learner_egress_MB")
			b.ReportMetric(float64(peerEgress)/1e6, "max_peer_egress_MB")
		})
	}
}

// measure accumulates the wall time and the process's CPU time (user and system, all threads) of
// some runs. CPU per byte is robust to other load on the machine; wall time is not.
type measure struct{ wall, cpu time.Duration }

func (m *measure) add(run func()) {
	wall, cpu := time.Now(), cpuTime()
	run()
	m.wall += time.Since(wall)
	m.cpu += cpuTime() - cpu
}

func (m *measure) mbps(bytes int64) float64 { return float64(bytes) / m.wall.Seconds() / 1e6 }

func (m *measure) cpuPerByte(bytes int64) float64 {
	return float64(m.cpu.Nanoseconds()) / float64(bytes)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fetcherDirs makes n empty directories for the receiving side of one broadcast; clean removes
// them with what was received, outside the measured time.
func fetcherDirs(b *testing.B, f *benchFixture, n int) (dirs []string, clean func()) {
	for range n {
		dir, err := os.MkdirTemp(f.root, "fetcher-")
		if err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	return dirs, func() {
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// stores opens a store in each directory.
func stores(b *testing.B, dirs []string) []*weights.Store {
	var out []*weights.Store
	for _, d := range dirs {
		s, err := weights.OpenStore(d)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// rawBroadcast copies the checkpoint's files to n readers over plain TCP and returns when all of
// them have every byte. With dirs, reader i writes to a file in dirs[i] and syncs it; without,
// readers discard what they read.
func rawBroadcast(b *testing.B, f *benchFixture, n int, dirs []string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer lis.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	wg.Go(func() {
		for range n {
			conn, err := lis.Accept()
			if err != nil {
				errs <- err
				return
			}
			wg.Go(func() { errs <- sendFiles(conn, f) })
		}
	})
	for i := range n {
		dst := ""
		if dirs != nil {
			dst = filepath.Join(dirs[i], "checkpoint")
		}
		wg.Go(func() { errs <- receiveRaw(lis.Addr().String(), dst, f.size) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// sendFiles writes every file of the checkpoint to conn (by sendfile(2) on Linux) and closes it.
func sendFiles(conn net.Conn, f *benchFixture) error {
	defer conn.Close()
	for _, file := range f.manifest.Files {
		in, err := os.Open(filepath.Join(f.store.Dir(benchVersion), file.Name))
		if err != nil {
			return err
		}
		_, err = io.Copy(conn, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// receiveRaw reads a raw broadcast into the file dst, synced, or discards it if dst is "", and
// checks its length.
func receiveRaw(addr, dst string, want int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dst == "" {
		return checkLength(io.Copy(io.Discard, conn))(want)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := checkLength(io.Copy(out, conn))(want); err != nil {
		return err
	}
	return out.Sync()
}

// checkLength turns io.Copy's result into an error if it failed or copied other than want bytes.
func checkLength(n int64, err error) func(want int64) error {
	return func(want int64) error {
		if err == nil && n != want {
			err = fmt.Errorf("raw reader got %d bytes, want %d", n, want)
		}
		return err
	}
}

// grpcBroadcast serves the learner store on a loopback gRPC server and fetches the checkpoint
// into every store at once, each over its own connection. It returns the bytes the learner sent.
func grpcBroadcast(b *testing.B, f *benchFixture, dst []*weights.Store) int64 {
	learner := weights.NewServer(f.store)
	addr := serveTCP(b, learner)
	var wg sync.WaitGroup
	for _, s := range dst {
		src := []weights.Source{{Name: addr, Client: dialTCP(b, addr)}}
		wg.Go(func() { fetch(b, src, f, s) })
	}
	wg.Wait()
	return learner.Stats().Bytes
}

// relayBroadcast fetches the checkpoint into every store in rounds: first from the learner,
// then from the stores that have it, each serving one new store per round. It returns the bytes
// the learner sent and the most any one peer sent.
func relayBroadcast(b *testing.B, f *benchFixture, dst []*weights.Store) (learnerBytes, maxPeerBytes int64) {
	learner := weights.NewServer(f.store)
	learnerAddr := serveTCP(b, learner)
	fetch(b, []weights.Source{{Name: learnerAddr, Client: dialTCP(b, learnerAddr)}}, f, dst[0])
	peers := []*weights.Server{weights.NewServer(dst[0])}
	addrs := []string{serveTCP(b, peers[0])}
	for have := 1; have < len(dst); {
		var wg sync.WaitGroup
		round := min(have, len(dst)-have)
		for i := range round {
			src := []weights.Source{{Name: addrs[i], Client: dialTCP(b, addrs[i])}, {Name: learnerAddr, Client: dialTCP(b, learnerAddr)}}
			wg.Go(func() { fetch(b, src, f, dst[have+i]) })
		}
		wg.Wait()
		for i := range round {
			peers = append(peers, weights.NewServer(dst[have+i]))
			addrs = append(addrs, serveTCP(b, peers[len(peers)-1]))
		}
		have += round
	}
	for _, p := range peers {
		maxPeerBytes = max(maxPeerBytes, p.Stats().Bytes)
	}
	return learner.Stats().Bytes, maxPeerBytes
}

// fetch runs weights.Fetch of the benchmark checkpoint into s, failing b on error. (Called from
// other goroutines: b.Error, not b.Fatal.)
func fetch(b *testing.B, src []weights.Source, f *benchFixture, s *weights.Store) {
	if _, err := weights.Fetch(context.Background(), src, benchVersion, f.manifest.Sha256, s, weights.FetchOptions{}); err != nil {
		b.Error(err)
	}
}

// serveTCP runs srv on a loopback port with the package's server options until b ends.
func serveTCP(b *testing.B, srv tsdv1.WeightsServer) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(weights.ServerOptions()...)
	tsdv1.RegisterWeightsServer(gs, srv)
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// dialTCP connects to addr with the package's dial options; the connection closes when b ends.
func dialTCP(b *testing.B, addr string) tsdv1.WeightsClient {
	opts := append(weights.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return tsdv1.NewWeightsClient(cc)
}
