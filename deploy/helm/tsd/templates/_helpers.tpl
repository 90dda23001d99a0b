{{/* The release's name prefix of every object. */}}
{{- define "tsd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{/* Labels of every object; "tsd.selector" with a component is the subset selectors use. */}}
{{- define "tsd.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tsd.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The coordinators' headless Service and pod DNS names. */}}
{{- define "tsd.coordinatorService" -}}{{ include "tsd.fullname" . }}-coordinator{{- end -}}
{{- define "tsd.coordinatorHost" -}}{{ include "tsd.coordinatorService" .root }}-{{ .i }}.{{ include "tsd.coordinatorService" .root }}.{{ .root.Release.Namespace }}.svc{{- end -}}

{{/* TSD_COORDINATORS: the three coordinators' gRPC addresses. */}}
{{- define "tsd.coordinators" -}}
{{- $root := . -}}
{{- range $i, $_ := until 3 -}}{{ if $i }},{{ end }}{{ include "tsd.coordinatorHost" (dict "root" $root "i" $i) }}:7001{{- end -}}
{{- end -}}

{{- define "tsd.tokenSecret" -}}{{ .Values.token.existingSecret | default (printf "%s-token" (include "tsd.fullname" .)) }}{{- end -}}

{{/* flags renders a map of tsd flags as ConfigMap data: TSD_<FLAG>: "value". */}}
{{- define "tsd.flags" -}}
{{- range $k, $v := . }}
TSD_{{ $k | upper | replace "-" "_" }}: {{ $v | toString | quote }}
{{- end -}}
{{- end -}}

{{/* Pod annotations: Prometheus scraping, and a checksum that rolls the pods when their config changes. */}}
{{- define "tsd.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- if .root.Values.metrics.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .root.Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* Environment of every tsd container: the token, the pod's name, TLS files, metrics. */}}
{{- define "tsd.env" -}}
- name: TSD_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "tsd.tokenSecret" . }}
      key: token
{{- if .Values.tls.enabled }}
- name: TSD_TLS_CERT
  value: /tsd/tls/tls.crt
- name: TSD_TLS_KEY
  value: /tsd/tls/tls.key
- name: TSD_TLS_CA
  value: /tsd/tls/ca.crt
{{- end }}
{{- if .Values.metrics.enabled }}
- name: TSD_METRICS_ADDR
  value: "0.0.0.0:{{ .Values.metrics.port }}"
{{- end }}
{{- end -}}

{{/* Volumes and mounts for TLS. */}}
{{- define "tsd.tlsVolume" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ required "tls.secretName is required with tls.enabled" .Values.tls.secretName }}
{{- end }}
{{- end -}}
{{- define "tsd.tlsMount" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /tsd/tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Readiness: Kubernetes' grpc probe against the gRPC health service; it speaks no TLS, so with
TLS the image's `tsd-entrypoint health` (tsd health with the TSD_TLS_* files) runs instead. */}}
{{- define "tsd.readiness" -}}
readinessProbe:
{{- if .root.Values.tls.enabled }}
  exec:
    command: ["tsd-entrypoint", "health"]
{{- else }}
  grpc:
    port: {{ .port }}
{{- end }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* The model: an init container writes the tiny one; a hub id is cached in the hf-cache volume. */}}
{{- define "tsd.modelPath" -}}{{ if .Values.model.tiny }}/tsd/models/tiny{{ else }}{{ required "model.name is required unless model.tiny" .Values.model.name }}{{ end }}{{- end -}}
{{- define "tsd.modelInit" -}}
{{- if .Values.model.tiny }}
- name: model-init
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["tsd", "init-model", "--preset", "tiny", "--out", "/tsd/models/tiny"]
  volumeMounts:
    - name: models
      mountPath: /tsd/models
{{- end }}
{{- end -}}
{{- define "tsd.modelMount" -}}
{{- if .Values.model.tiny }}
- name: models
  mountPath: /tsd/models
  readOnly: true
{{- else }}
- name: hf-cache
  mountPath: /tsd/hf
{{- end }}
{{- end -}}

{{/* GPU requests: nvidia.com/gpu as a limit (Kubernetes requests equal limits for extended resources). */}}
{{- define "tsd.resources" -}}
{{- $r := deepCopy (.resources | default dict) -}}
{{- if .gpus }}
{{- $_ := set $r "limits" (merge (dict "nvidia.com/gpu" .gpus) (get $r "limits" | default dict)) -}}
{{- end }}
{{- toYaml $r }}
{{- end -}}

{{- define "tsd.antiAffinity" -}}
{{- if eq .mode "hard" }}
requiredDuringSchedulingIgnoredDuringExecution:
  - topologyKey: kubernetes.io/hostname
    labelSelector:
      matchLabels:
        {{- include "tsd.selector" . | nindent 8 }}
{{- else }}
preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    podAffinityTerm:
      topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "tsd.selector" . | nindent 10 }}
{{- end }}
{{- end -}}
