{{/* Names and labels shared by every object. */}}
{{- define "orderflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "orderflow.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway" "region" "") */}}
{{- define "orderflow.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .region }}
orderflow.io/region: {{ .region }}
{{- end }}
{{- end -}}

{{- define "orderflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "orderflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "orderflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* minReplicas: minReplicasPerZone in every zone. */}}
{{- define "orderflow.minReplicas" -}}
{{- mul (int .Values.minReplicasPerZone) (len (required "zones: at least one zone" .Values.zones)) -}}
{{- end -}}

{{/* The environment of every orderflow process: the ConfigMap, the Temporal
     address, and each secretEnv entry from the existing Secret. */}}
{{- define "orderflow.env" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.env.TEMPORAL_ADDRESS | default .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
{{- with .Values.temporal.tls.existingSecret }}
- name: TEMPORAL_TLS_CA_FILE
  value: /etc/orderflow/temporal-tls/ca.crt
- name: TEMPORAL_TLS_CERT_FILE
  value: /etc/orderflow/temporal-tls/tls.crt
- name: TEMPORAL_TLS_KEY_FILE
  value: /etc/orderflow/temporal-tls/tls.key
{{- end }}
{{- with .Values.temporal.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- $secret := required "existingSecret: the name of an existing Secret" .Values.existingSecret }}
{{- range $name, $ref := .Values.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $ref.key }}
      {{- if $ref.optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}

{{- define "orderflow.envFrom" -}}
- configMapRef:
    name: {{ include "orderflow.fullname" . }}
{{- end -}}

{{/* Volumes every pod mounts: a writable /tmp (the root file system is
     read-only) and the Temporal client certificate when there is one. */}}
{{- define "orderflow.volumes" -}}
- name: tmp
  emptyDir: {}
{{- with .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{- define "orderflow.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/orderflow/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Probes on a named port: (dict "root" $ "port" "http") */}}
{{- define "orderflow.probes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet: {path: {{ $p.liveness.path }}, port: {{ .port }}}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet: {path: {{ $p.liveness.path }}, port: {{ .port }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet: {path: {{ $p.readiness.path }}, port: {{ .port }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end -}}

{{/* Spread across zones (hard) and nodes (soft). */}}
{{- define "orderflow.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels:
        {{- include "orderflow.selector" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "orderflow.selector" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
{{- end -}}

{{/* The design's HPA behavior. */}}
{{- define "orderflow.hpaBehavior" -}}
{{- $a := .Values.autoscaling -}}
behavior:
  scaleUp:
    stabilizationWindowSeconds: {{ $a.scaleUp.stabilizationSeconds }}
    selectPolicy: Max
    policies:
      - type: Percent
        value: {{ $a.scaleUp.percent }}
        periodSeconds: {{ $a.scaleUp.periodSeconds }}
  scaleDown:
    stabilizationWindowSeconds: {{ $a.scaleDown.stabilizationSeconds }}
    selectPolicy: Min
    policies:
      - type: Percent
        value: {{ $a.scaleDown.percent }}
        periodSeconds: {{ $a.scaleDown.periodSeconds }}
{{- end -}}

{{- define "orderflow.resourceMetrics" -}}
- type: Resource
  resource:
    name: cpu
    target:
      type: Utilization
      averageUtilization: {{ .Values.autoscaling.cpuUtilization }}
- type: Resource
  resource:
    name: memory
    target:
      type: Utilization
      averageUtilization: {{ .Values.autoscaling.memoryUtilization }}
{{- end -}}
