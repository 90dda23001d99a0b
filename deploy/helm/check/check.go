package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// object is one rendered manifest, decoded into its API type.
type object struct {
	source string // template file and document index
	kind   string
	name   string
	value  any // *appsv1.StatefulSet, *corev1.Service, ...
}

// kinds maps apiVersion/kind to a fresh value of the type the chart may render; anything else fails.
var kinds = map[string]func() any{
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"v1/PersistentVolumeClaim":               func() any { return &corev1.PersistentVolumeClaim{} },
}

// decodeAll decodes every document strictly: an unknown field or a value of the wrong type is a
// problem, as it would be for `kubectl apply --validate=strict`.
func decodeAll(docs map[string]string) ([]object, []string) {
	var objs []object
	var problems []string
	for _, src := range sortedDocs(docs) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(docs[src]), &tm); err != nil {
			problems = append(problems, fmt.Sprintf("%s: not YAML: %v", src, err))
			continue
		}
		mk := kinds[tm.APIVersion+"/"+tm.Kind]
		if mk == nil {
			problems = append(problems, fmt.Sprintf("%s: unexpected kind %s/%s", src, tm.APIVersion, tm.Kind))
			continue
		}
		v := mk()
		if err := yaml.UnmarshalStrict([]byte(docs[src]), v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", src, tm.Kind, err))
			continue
		}
		name := v.(metav1.Object).GetName()
		if name == "" {
			problems = append(problems, fmt.Sprintf("%s: %s without a name", src, tm.Kind))
		}
		objs = append(objs, object{source: src, kind: tm.Kind, name: name, value: v})
	}
	return objs, problems
}

// pod is a workload's pod template with where it came from.
type pod struct {
	owner    string
	template *corev1.PodTemplateSpec
	claims   []corev1.PersistentVolumeClaim
}

// crossCheck finds what decoding cannot: references between the objects and to tsd's flags.
func crossCheck(objs []object, env envRules) []string {
	var problems []string
	addf := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var pods []pod
	services := map[string]*corev1.Service{}
	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *appsv1.StatefulSet:
			pods = append(pods, pod{"StatefulSet " + v.Name, &v.Spec.Template, v.Spec.VolumeClaimTemplates})
			if selectorProblem(v.Spec.Selector, v.Spec.Template.Labels) != "" {
				addf("StatefulSet %s: %s", v.Name, selectorProblem(v.Spec.Selector, v.Spec.Template.Labels))
			}
		case *appsv1.Deployment:
			pods = append(pods, pod{"Deployment " + v.Name, &v.Spec.Template, nil})
			if selectorProblem(v.Spec.Selector, v.Spec.Template.Labels) != "" {
				addf("Deployment %s: %s", v.Name, selectorProblem(v.Spec.Selector, v.Spec.Template.Labels))
			}
		case *corev1.Service:
			services[v.Name] = v
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *corev1.Secret:
			secrets[v.Name] = v
		}
	}
	matching := func(sel map[string]string) []pod {
		var out []pod
		for _, p := range pods {
			if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(p.template.Labels)) {
				out = append(out, p)
			}
		}
		return out
	}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *appsv1.StatefulSet:
			if s := services[v.Spec.ServiceName]; s == nil {
				addf("StatefulSet %s: serviceName %q names no rendered Service", v.Name, v.Spec.ServiceName)
			} else if s.Spec.ClusterIP != corev1.ClusterIPNone {
				addf("StatefulSet %s: its Service %s is not headless (clusterIP: None)", v.Name, s.Name)
			}
		case *corev1.Service:
			ps := matching(v.Spec.Selector)
			if len(ps) == 0 {
				addf("Service %s: selector %v matches no pod template", v.Name, v.Spec.Selector)
				continue
			}
			for _, sp := range v.Spec.Ports {
				for _, p := range ps {
					if !hasPort(p.template, sp.TargetPort.String(), sp.Port) {
						addf("Service %s: port %s (target %s) is no container port of %s", v.Name, sp.Name, sp.TargetPort.String(), p.owner)
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(v.Spec.Selector)
			if err != nil || sel.Empty() {
				addf("PodDisruptionBudget %s: bad or empty selector", v.Name)
				continue
			}
			n := 0
			for _, p := range pods {
				if sel.Matches(labels.Set(p.template.Labels)) {
					n++
				}
			}
			if n == 0 {
				addf("PodDisruptionBudget %s: selector matches no pod template", v.Name)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := v.Spec.ScaleTargetRef
			found := false
			for _, p := range pods {
				found = found || p.owner == ref.Kind+" "+ref.Name
			}
			if !found {
				addf("HorizontalPodAutoscaler %s: scale target %s %s is not rendered", v.Name, ref.Kind, ref.Name)
			}
		}
	}
	for _, p := range pods {
		problems = append(problems, podProblems(p, configMaps, secrets, env)...)
	}
	return problems
}

// selectorProblem says why a workload's selector does not select its own pod template.
func selectorProblem(sel *metav1.LabelSelector, podLabels map[string]string) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	switch {
	case err != nil:
		return fmt.Sprintf("bad selector: %v", err)
	case s.Empty():
		return "empty selector"
	case !s.Matches(labels.Set(podLabels)):
		return fmt.Sprintf("selector %s does not match its pod template's labels %v", s, podLabels)
	}
	return ""
}

// hasPort reports whether a container of the pod serves target: a port name, or a number (a
// number of 0 means the Service's own port).
func hasPort(t *corev1.PodTemplateSpec, target string, servicePort int32) bool {
	for _, c := range t.Spec.Containers {
		for _, cp := range c.Ports {
			switch target {
			case cp.Name:
				return cp.Name != ""
			case "0", "":
				if cp.ContainerPort == servicePort {
					return true
				}
			case fmt.Sprint(cp.ContainerPort):
				return true
			}
		}
	}
	return false
}

// podProblems checks one pod template: probe ports, volumes, and every container's environment.
func podProblems(p pod, configMaps map[string]*corev1.ConfigMap, secrets map[string]*corev1.Secret, env envRules) []string {
	var problems []string
	addf := func(format string, a ...any) { problems = append(problems, p.owner+": "+fmt.Sprintf(format, a...)) }
	volumes := map[string]bool{}
	for _, v := range p.template.Spec.Volumes {
		volumes[v.Name] = true
		if v.ConfigMap != nil && configMaps[v.ConfigMap.Name] == nil {
			addf("volume %s: ConfigMap %s is not rendered", v.Name, v.ConfigMap.Name)
		}
	}
	for _, c := range p.claims {
		volumes[c.Name] = true
	}
	all := append(append([]corev1.Container{}, p.template.Spec.InitContainers...), p.template.Spec.Containers...)
	for _, c := range all {
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				addf("container %s mounts %s, which is no volume of the pod", c.Name, m.Name)
			}
		}
		for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if probe != nil && probe.GRPC != nil && !containerHasPort(c, probe.GRPC.Port) {
				addf("container %s: grpc probe port %d is none of its ports", c.Name, probe.GRPC.Port)
			}
		}
		names := map[string]bool{}
		for _, e := range c.Env {
			names[e.Name] = true
			if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil && configMaps[r.ConfigMapKeyRef.Name] == nil {
				addf("container %s: %s from ConfigMap %s, which is not rendered", c.Name, e.Name, r.ConfigMapKeyRef.Name)
			}
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil && secrets[r.SecretKeyRef.Name] != nil {
				if _, ok := secrets[r.SecretKeyRef.Name].StringData[r.SecretKeyRef.Key]; !ok {
					if _, ok := secrets[r.SecretKeyRef.Name].Data[r.SecretKeyRef.Key]; !ok {
						addf("container %s: %s from Secret %s key %s, which it lacks", c.Name, e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
					}
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				continue
			}
			cm := configMaps[ef.ConfigMapRef.Name]
			if cm == nil {
				addf("container %s: envFrom ConfigMap %s is not rendered", c.Name, ef.ConfigMapRef.Name)
				continue
			}
			for k := range cm.Data {
				names[ef.Prefix+k] = true
			}
		}
		role := roleOf(c)
		for _, n := range sortedKeys(names) {
			if why := env.check(role, n, c); why != "" {
				addf("container %s (tsd %s): %s", c.Name, role, why)
			}
		}
	}
	return problems
}

func containerHasPort(c corev1.Container, port int32) bool {
	for _, cp := range c.Ports {
		if cp.ContainerPort == port {
			return true
		}
	}
	return false
}

// roleOf is the tsd subcommand a container runs: `tsd ROLE ...` as its command, or ROLE as the
// first argument to the image's entry point.
func roleOf(c corev1.Container) string {
	if len(c.Command) >= 2 && (c.Command[0] == "tsd" || c.Command[0] == "tsd-entrypoint") {
		return c.Command[1]
	}
	if len(c.Command) == 0 && len(c.Args) > 0 {
		return c.Args[0]
	}
	return ""
}

func sortedDocs(docs map[string]string) []string {
	out := make([]string, 0, len(docs))
	for k := range docs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// envRules knows which variables a container may set: TSD_<FLAG> for a flag of its role, what the
// image's entry point reads, a few runtime variables, and variables that another variable of the
// same container names as $(NAME) (Kubernetes' dependent variables, e.g. the pod's IP).
type envRules struct {
	flags      map[string]map[string]bool // role -> TSD_ names of its flags
	entrypoint map[string]bool
}

// runtimeEnv are read by libraries under tsd, not by tsd's flags.
var runtimeEnv = map[string]bool{"OMP_WAIT_POLICY": true, "OPENBLAS_NUM_THREADS": true,
	"CUDA_VISIBLE_DEVICES": true, "NVIDIA_VISIBLE_DEVICES": true, "HF_HOME": true}

func (r envRules) check(role, name string, c corev1.Container) string {
	if strings.HasPrefix(name, "TSD_") {
		flags, ok := r.flags[role]
		if !ok {
			return fmt.Sprintf("%s set, but %q is no tsd role known to the check", name, role)
		}
		if flags[name] || r.entrypointOnly(name) {
			return ""
		}
		return fmt.Sprintf("%s is no flag of `tsd %s` (TSD_<FLAG> for --flag)", name, role)
	}
	if runtimeEnv[name] || r.entrypoint[name] {
		return ""
	}
	for _, e := range c.Env {
		if strings.Contains(e.Value, "$("+name+")") {
			return ""
		}
	}
	return fmt.Sprintf("%s is read by neither tsd, its entry point, nor another variable", name)
}

// entrypointOnly reports a TSD_ name the entry point reads that is no flag of any role
// (TSD_TOKEN_FILE): a flag's name is allowed only for the roles that have the flag.
func (r envRules) entrypointOnly(name string) bool {
	for _, flags := range r.flags {
		if flags[name] {
			return false
		}
	}
	return r.entrypoint[name]
}

// roles are the tsd subcommands the chart runs.
var roles = []string{"coordinator", "learner", "actor", "init-model"}

var flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)

// loadEnvRules asks the real binary for each role's flags (`tsd ROLE --help`) and reads the names
// the entry point script uses.
func loadEnvRules(tsdBin, entrypoint string) (envRules, error) {
	r := envRules{flags: map[string]map[string]bool{}, entrypoint: map[string]bool{}}
	for _, role := range roles {
		out, err := exec.Command(tsdBin, role, "--help").Output()
		if err != nil {
			return r, fmt.Errorf("%s %s --help: %w", tsdBin, role, err)
		}
		r.flags[role] = parseFlags(string(out))
		if len(r.flags[role]) < 2 {
			return r, fmt.Errorf("%s %s --help lists no flags", tsdBin, role)
		}
	}
	script, err := os.ReadFile(entrypoint)
	if err != nil {
		return r, err
	}
	for _, m := range regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(string(script), -1) {
		r.entrypoint[m[1]] = true
	}
	return r, nil
}

// parseFlags turns cobra's help text into the TSD_ names of the flags it lists.
func parseFlags(help string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(help, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil && m[1] != "help" {
			names["TSD_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	return names
}
