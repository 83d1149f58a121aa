{{/* Pod template of one service: dict root, svc, cfg (its values), tokens (Secret keys), env (extra list), mounts, volumes. */}}
{{- define "aetherbus.pod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "aetherbus.labels" (dict "root" $root "svc" .svc) | nindent 4 }}
  annotations:
    {{- include "aetherbus.checksums" (dict "root" $root) | nindent 4 }}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: 30
  containers:
    - name: {{ .svc }}
      image: {{ include "aetherbus.image" (dict "root" $root "svc" .svc) }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      ports:
        - name: http
          containerPort: {{ .cfg.port }}
          protocol: TCP
      envFrom:
        {{- include "aetherbus.envFrom" $root | trim | nindent 8 }}
      env:
        - name: PORT
          value: {{ .cfg.port | quote }}
        {{- with include "aetherbus.tokenEnv" (dict "root" $root "keys" .tokens) | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- range $k, $v := .cfg.extraEnv }}
        - name: {{ $k }}
          value: {{ $v | quote }}
        {{- end }}
      {{- include "aetherbus.probes" (dict "failureThreshold" .startupFailureThreshold "startupPath" .startupPath) | nindent 6 }}
      resources:
        {{- toYaml .cfg.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with include "aetherbus.caVolumeMount" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with .mounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- with include "aetherbus.caVolume" $root | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
