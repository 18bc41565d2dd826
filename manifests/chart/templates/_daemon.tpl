{{/*
One daemon's Deployment and Service. Called with a dict:
  name: the daemon (deploy-synchronizer, config-updater)
  port: its http port
  values: its section of the values
  args: its own extra arguments (a list)
  root: the chart's top scope
*/}}
{{- define "sluice.labels" -}}
{app.kubernetes.io/name: {{ .name }}, app.kubernetes.io/part-of: sluice}
{{- end }}

{{- define "sluice.image" -}}
{{- $image := .image -}}
{{- if $image.digest -}}
{{ $image.repository }}@{{ $image.digest }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag }}
{{- end -}}
{{- end }}

{{- define "sluice.daemon" -}}
{{- $v := .values -}}
{{- $args := list "--log-format" "json" "run" -}}
{{- if $v.leaderElect }}{{ $args = append $args "--leader-elect" }}{{ end -}}
{{- if $v.watchNamespace }}{{ $args = concat $args (list "--watch-namespace" $v.watchNamespace) }}{{ end -}}
{{- range $provider, $secret := $v.webhookSecrets }}
{{- $args = concat $args (list "--webhook-secret-file" (printf "%s=/etc/sluice/webhooks/%s/secret" $provider $provider)) }}
{{- end -}}
{{- $args = concat $args .args $v.extraArgs -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels: {{ include "sluice.labels" . }}
spec:
  replicas: {{ $v.replicas }}
  selector:
    matchLabels: {app.kubernetes.io/name: {{ .name }}}
  template:
    metadata:
      labels: {{ include "sluice.labels" . }}
    spec:
      serviceAccountName: {{ .name }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: {{ .name }}
          image: {{ include "sluice.image" $v }}
          args: {{ toJson $args }}
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
          ports:
            - {name: http, containerPort: {{ .port }}}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
          resources: {{ toJson $v.resources }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: ["ALL"]}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            {{- range $provider, $secret := $v.webhookSecrets }}
            - {name: webhook-{{ $provider }}, mountPath: /etc/sluice/webhooks/{{ $provider }}, readOnly: true}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 1Gi}
        {{- range $provider, $secret := $v.webhookSecrets }}
        - name: webhook-{{ $provider }}
          secret: {secretName: {{ $secret }}}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels: {{ include "sluice.labels" . }}
spec:
  selector: {app.kubernetes.io/name: {{ .name }}}
  ports:
    - {name: http, port: 80, targetPort: http}
{{- end }}
