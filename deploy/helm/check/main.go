// Command check validates the tsd Helm chart without a cluster: it lints the chart, renders it with
// each values file the way `helm template` does, decodes every object strictly into the Kubernetes
// API types and checks what the API server would not: selectors that match no pod, ports that name
// no container port, environment variables that are no flag of the tsd role they configure.
//
//	go run . -chart ../tsd -tsd ../../../bin/tsd -entrypoint ../../entrypoint.sh
//
// It is a module of its own so that Helm and the Kubernetes API types stay out of tsd's build.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

func main() {
	chartDir := flag.String("chart", "deploy/helm/tsd", "chart directory")
	tsdBin := flag.String("tsd", "bin/tsd", "tsd binary whose flags the environment must name")
	entrypoint := flag.String("entrypoint", "deploy/entrypoint.sh", "image entry point: the other variables it reads are allowed")
	show := flag.Bool("show", false, "print what each values file renders (as helm template would)")
	flag.Parse()
	valueFiles := flag.Args()
	if len(valueFiles) == 0 { // the defaults, then every values-*.yaml beside them
		more, _ := filepath.Glob(filepath.Join(*chartDir, "values-*.yaml"))
		valueFiles = append([]string{""}, more...)
	}
	env, err := loadEnvRules(*tsdBin, *entrypoint)
	if err != nil {
		fail(err)
	}
	bad := 0
	for _, vf := range valueFiles {
		name := vf
		if name == "" {
			name = "values.yaml (defaults)"
		}
		problems, objects, err := checkValues(*chartDir, vf, env, *show)
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
		if len(problems) == 0 {
			fmt.Printf("ok   %s: lint clean, %d objects decoded strictly and cross-checked\n", name, objects)
			continue
		}
		bad++
		fmt.Printf("FAIL %s:\n", name)
		for _, p := range problems {
			fmt.Printf("    %s\n", p)
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "check:", err)
	os.Exit(2)
}

// checkValues lints and renders the chart with one values file ("" = defaults only) and checks
// what it renders; it returns the problems and how many objects were checked.
func checkValues(chartDir, valuesFile string, env envRules, show bool) ([]string, int, error) {
	vals := map[string]any{}
	if valuesFile != "" {
		v, err := chartutil.ReadValuesFile(valuesFile)
		if err != nil {
			return nil, 0, err
		}
		vals = v.AsMap()
	}
	var problems []string
	for _, m := range lint.All(chartDir, vals, "tsd", false).Messages {
		if m.Severity >= support.WarningSev {
			problems = append(problems, "lint: "+m.Error())
		} else {
			fmt.Printf("info %s: %s\n", cmp.Or(valuesFile, "values.yaml (defaults)"), m.Error())
		}
	}
	docs, err := render(chartDir, vals)
	if err != nil {
		return nil, 0, err
	}
	if show {
		for _, src := range sortedDocs(docs) {
			fmt.Printf("---\n# %s (%s)\n%s\n", src, valuesFile, strings.TrimPrefix(strings.TrimSpace(docs[src]), "---\n"))
		}
	}
	objs, decodeProblems := decodeAll(docs)
	problems = append(problems, decodeProblems...)
	problems = append(problems, crossCheck(objs, env)...)
	return problems, len(objs), nil
}

// render is `helm template` in strict mode: a value the templates name but the values lack fails.
func render(chartDir string, vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return nil, err
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: "tsd", Namespace: "tsd", Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Engine{Strict: true}.Render(ch, top)
	if err != nil {
		return nil, err
	}
	docs := map[string]string{}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasSuffix(name, ".tpl") {
			continue
		}
		for i, doc := range strings.Split(out[name], "\n---") {
			if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
				continue
			}
			docs[fmt.Sprintf("%s#%d", name, i)] = doc
		}
	}
	return docs, nil
}
