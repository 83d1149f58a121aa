{{- define "aetherbus.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "aetherbus.labels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: aetherbus
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
app.kubernetes.io/component: {{ .svc }}
{{- end -}}

{{- define "aetherbus.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc }}
{{- end -}}

{{- define "aetherbus.secretName" -}}
{{- if .Values.secrets.create -}}{{ include "aetherbus.fullname" . }}-tokens{{- else -}}{{ required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret }}{{- end -}}
{{- end -}}

{{- define "aetherbus.image" -}}
{{ printf "%s/aetherbus-%s:%s" .root.Values.image.registry .svc .root.Values.image.tag }}
{{- end -}}

{{/* Config every container of the release shares; its checksum rolls pods. */}}
{{- define "aetherbus.checksums" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
checksum/secret: {{ include (print .root.Template.BasePath "/secret.yaml") .root | sha256sum }}
{{- end -}}

{{- define "aetherbus.envFrom" -}}
- configMapRef:
    name: {{ include "aetherbus.fullname" . }}-config
{{- if .Values.kafka.rdkafkaSecret }}
- secretRef:
    name: {{ .Values.kafka.rdkafkaSecret }}
{{- end }}
{{- end -}}

{{/* The keys the tokens Secret holds, as a JSON list: with create, those
     whose value is set (a service refuses an empty token, so an unset one
     is left out rather than passed as ""); with existingSecret, the ones
     secrets.existingSecretKeys names. A pod references only these. */}}
{{- define "aetherbus.secretKeys" -}}
{{- $s := .Values.secrets -}}
{{- if $s.create -}}
{{- $keys := list -}}
{{- range $k, $v := dict "EVENT_INGEST_TOKEN" $s.ingestToken "EVENT_SINK_TOKEN" $s.sinkToken "ADMIN_TOKEN" $s.adminToken "client-keys.json" $s.clientKeys "audit-signing.key" $s.auditSigningKey -}}
{{- if $v }}{{ $keys = append $keys $k }}{{ end -}}
{{- end -}}
{{- toJson $keys -}}
{{- else -}}
{{- toJson $s.existingSecretKeys -}}
{{- end -}}
{{- end -}}

{{- define "aetherbus.tokenEnv" -}}
{{- $root := .root -}}
{{- $has := include "aetherbus.secretKeys" $root | fromJsonArray -}}
{{- range .keys }}
{{- if has . $has }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "aetherbus.secretName" $root }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "aetherbus.caVolumeMount" -}}
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/aetherbus/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "aetherbus.caVolume" -}}
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    defaultMode: 0444
{{- end }}
{{- end -}}

{{- define "aetherbus.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- /* Until the startup probe passes, liveness is not checked. stats
       probes /readyz here, so its rebuild of the last hour may take
       failureThreshold x 5 s; the others only wait for /healthz, so a Kafka
       outage at start keeps them unready instead of restarting them. */}}
startupProbe:
  httpGet: {path: {{ .startupPath | default "/healthz" }}, port: http}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: {{ .failureThreshold | default 24 }}
{{- end -}}

{{- define "aetherbus.monitoringEnabled" -}}
{{- $v := toString .value -}}
{{- if or (eq $v "true") (and (eq $v "auto") (.root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind))) -}}true{{- end -}}
{{- end -}}
