package main

import (
	"strings"
	"testing"
)

// good is a minimal valid rendering: a workload, its headless Service, a Service, a ConfigMap.
const good = `apiVersion: v1
kind: Service
metadata: {name: learner-pods}
spec:
  clusterIP: None
  selector: {app: learner}
  ports: [{name: grpc, port: 7201, targetPort: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: learner}
spec:
  selector: {app: learner}
  ports: [{name: grpc, port: 7201, targetPort: grpc}, {name: metrics, port: 9090, targetPort: 9090}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: learner-config}
data: {TSD_ALGO: mcts}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: learner}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: learner}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: learner}
spec:
  serviceName: learner-pods
  selector: {matchLabels: {app: learner}}
  template:
    metadata: {labels: {app: learner, tier: train}}
    spec:
      containers:
        - name: learner
          image: tsd:cpu
          args: [learner]
          envFrom: [{configMapRef: {name: learner-config}}]
          env:
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
            - {name: TSD_ADDR, value: "$(POD_IP):7201"}
            - {name: TSD_TOKEN_FILE, value: /run/token}
            - {name: OMP_WAIT_POLICY, value: PASSIVE}
          ports: [{name: grpc, containerPort: 7201}, {name: metrics, containerPort: 9090}]
          readinessProbe: {grpc: {port: 7201}}
          volumeMounts: [{name: state, mountPath: /tsd/state}]
  volumeClaimTemplates:
    - metadata: {name: state}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

var rules = envRules{
	flags: map[string]map[string]bool{
		"learner":     {"TSD_ADDR": true, "TSD_ALGO": true, "TSD_TOKEN": true},
		"coordinator": {"TSD_GRPC_ADDR": true},
	},
	entrypoint: map[string]bool{"TSD_TOKEN_FILE": true, "TSD_GRPC_ADDR": true, "ACTOR_PORT": true},
}

func problemsOf(t *testing.T, manifest string) []string {
	t.Helper()
	docs := map[string]string{}
	for i, d := range strings.Split(manifest, "\n---\n") {
		docs[string(rune('a'+i))] = d
	}
	objs, problems := decodeAll(docs)
	return append(problems, crossCheck(objs, rules)...)
}

func TestGoodManifestPasses(t *testing.T) {
	if p := problemsOf(t, good); len(p) != 0 {
		t.Fatalf("problems in a valid manifest: %q", p)
	}
}

// Each broken manifest must fail, with a message naming what is wrong.
func TestBrokenManifestsFail(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown field", "  serviceName: learner-pods", "  serviceName: learner-pods\n  replica: 1", `StatefulSet: error unmarshaling JSON: while decoding JSON: json: unknown field "replica"`},
		{"wrong type", "minAvailable: 1", "minAvailable: [1]", "PodDisruptionBudget"},
		{"wrong type of a port", "containerPort: 7201}", "containerPort: seven}", "StatefulSet"},
		{"unknown kind", "kind: ConfigMap", "kind: ConfigMapp", "unexpected kind v1/ConfigMapp"},
		{"workload selector misses its pods", "selector: {matchLabels: {app: learner}}\n  template", "selector: {matchLabels: {app: lerner}}\n  template", "does not match its pod template"},
		{"service selects no pod", "metadata: {name: learner}\nspec:\n  selector: {app: learner}", "metadata: {name: learner}\nspec:\n  selector: {app: actor}", "Service learner: selector map[app:actor] matches no pod template"},
		{"pdb selects no pod", "selector: {matchLabels: {app: learner}}\n---", "selector: {matchLabels: {app: x}}\n---", "PodDisruptionBudget learner: selector matches no pod template"},
		{"service port names no container port", "{name: grpc, port: 7201, targetPort: grpc}, {name: metrics", "{name: grpc, port: 7201, targetPort: grcp}, {name: metrics", "target grcp"},
		{"service port number no container has", "targetPort: 9090}", "targetPort: 9091}", "target 9091"},
		{"statefulset without its headless service", "serviceName: learner-pods", "serviceName: learner", "is not headless"},
		{"probe on no port", "grpc: {port: 7201}", "grpc: {port: 7301}", "grpc probe port 7301"},
		{"mount of no volume", "{name: state, mountPath", "{name: stat, mountPath", "mounts stat"},
		{"env that is no flag", "{name: OMP_WAIT_POLICY, value: PASSIVE}", "{name: TSD_ALGORITHM, value: mcts}", "TSD_ALGORITHM is no flag of `tsd learner`"},
		{"configmap key that is no flag", "data: {TSD_ALGO: mcts}", "data: {TSD_ALGO: mcts, TSD_WAVE: '4'}", "TSD_WAVE is no flag of `tsd learner`"},
		{"another role's flag read by the entry point", "{name: OMP_WAIT_POLICY, value: PASSIVE}", "{name: TSD_GRPC_ADDR, value: x}", "TSD_GRPC_ADDR is no flag"},
		{"a variable nothing reads", "{name: OMP_WAIT_POLICY, value: PASSIVE}", "{name: GOMAXPROCS, value: '2'}", "GOMAXPROCS is read by neither"},
		{"envFrom of a missing ConfigMap", "configMapRef: {name: learner-config}", "configMapRef: {name: learner-cfg}", "envFrom ConfigMap learner-cfg is not rendered"},
		{"env on an unknown role", "args: [learner]", "args: [trainer]", `"trainer" is no tsd role`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("test case does not apply: %q not in the manifest", tc.from)
			}
			p := problemsOf(t, strings.Replace(good, tc.from, tc.to, 1))
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Fatalf("want a problem containing %q, got %q", tc.want, p)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	help := `Usage:
  tsd actor [flags]

Flags:
      --addr string            gRPC address peers dial
  -h, --help                   help for actor
      --search-max-new-tokens int   budget
`
	got := parseFlags(help)
	for _, want := range []string{"TSD_ADDR", "TSD_SEARCH_MAX_NEW_TOKENS"} {
		if !got[want] {
			t.Errorf("%s not parsed from the help text: %v", want, got)
		}
	}
	if got["TSD_HELP"] || len(got) != 2 {
		t.Errorf("parsed %v, want exactly TSD_ADDR and TSD_SEARCH_MAX_NEW_TOKENS", got)
	}
}
