{{/* Names and labels. */}}
{{- define "mediaflow.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mediaflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The selector of one role's pods: dict "root" $ "role" NAME. */}}
{{- define "mediaflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediaflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "mediaflow.labels" -}}
{{ include "mediaflow.selectorLabels" . }}
app.kubernetes.io/part-of: mediaflow
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "mediaflow.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The pipeline roles: how each runs, where it listens, how it is probed, and
which secrets it needs (least privilege: a role gets only those).
  kind         StatefulSet for the transactional stages: their transactional
               id is derived from MEDIAFLOW_INSTANCE_NAME, which must survive a
               restart (see README.md).
  needs        kafka: Kafka client properties; s3: S3 credentials; tenants: the
               tenants' secrets; db: the projection database; token: the API token.
*/}}
{{- define "mediaflow.roleTable" -}}
webhooks:
  kind: Deployment
  args: [serve, webhooks]
  portName: http
  liveness: /healthz
  readiness: /readyz
  metricsPath: /metrics
  needs: [kafka, tenants]
detector:
  kind: StatefulSet
  args: [run, detector]
  portName: metrics
  liveness: /metrics
  readiness: /metrics
  metricsPath: /metrics
  needs: [kafka]
downloader:
  kind: StatefulSet
  args: [run, downloader]
  portName: metrics
  liveness: /metrics
  readiness: /metrics
  metricsPath: /metrics
  needs: [kafka, s3, tenants]
notifier:
  kind: StatefulSet
  args: [run, notifier]
  portName: metrics
  liveness: /metrics
  readiness: /metrics
  metricsPath: /metrics
  needs: [kafka, s3, tenants]
projection:
  kind: Deployment
  args: [run, projection]
  portName: metrics
  liveness: /metrics
  readiness: /metrics
  metricsPath: /metrics
  needs: [kafka, db]
api:
  kind: Deployment
  args: [serve, api]
  portName: http
  # The API has no health route; its public OpenAPI document answers once it serves.
  liveness: /openapi.yaml
  readiness: /openapi.yaml
  metricsPath: ""
  needs: [db, s3, token]
{{- end }}

{{/* The port a role listens on: dict "root" $ "role" NAME. */}}
{{- define "mediaflow.port" -}}
{{- if eq .role "webhooks" }}8080{{ else if eq .role "api" }}8081{{ else }}{{ .root.Values.metrics.port }}{{ end }}
{{- end }}

{{/* Environment of a role's container: dict "root" $ "role" NAME "spec" ROLE-TABLE-ENTRY. */}}
{{- define "mediaflow.env" -}}
{{- $v := .root.Values -}}
- name: MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS
  value: {{ $v.kafka.bootstrapServers | quote }}
- name: MEDIAFLOW_TOPIC_PREFIX
  value: {{ $v.kafka.topicPrefix | quote }}
- name: MEDIAFLOW_TOPICS_FILE
  value: /etc/mediaflow/topics.toml
- name: MEDIAFLOW_TENANTS_FILE
  value: /etc/mediaflow/tenants.toml
# Empty: AWS S3.
- name: MEDIAFLOW_S3_ENDPOINT_URL
  value: {{ $v.s3.endpointUrl | quote }}
- name: MEDIAFLOW_S3_REGION
  value: {{ $v.s3.region | quote }}
- name: MEDIAFLOW_S3_BUCKET
  value: {{ $v.s3.bucket | quote }}
- name: MEDIAFLOW_S3_ADDRESSING_STYLE
  value: {{ $v.s3.addressingStyle | quote }}
{{- range $name, $value := $v.settings }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- if has "s3" .spec.needs }}
- name: MEDIAFLOW_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.s3.existingSecret | quote }}, key: {{ $v.s3.accessKeyKey | quote }}}
- name: MEDIAFLOW_S3_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.s3.existingSecret | quote }}, key: {{ $v.s3.secretKeyKey | quote }}}
{{- end }}
{{- if has "db" .spec.needs }}
- name: MEDIAFLOW_PROJECTION_DB_URL
  valueFrom:
    secretKeyRef: {name: {{ $v.projection.existingSecret | quote }}, key: {{ $v.projection.urlKey | quote }}}
{{- end }}
{{- if has "token" .spec.needs }}
- name: MEDIAFLOW_API_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ $v.api.existingSecret | quote }}, key: {{ $v.api.tokenKey | quote }}}
{{- end }}
{{- if hasKey $v.roles .role }}
{{- if eq .role "webhooks" }}
- name: MEDIAFLOW_WEBHOOK_HOST
  value: "0.0.0.0"
- name: MEDIAFLOW_WEBHOOK_PORT
  value: "8080"
{{- else if eq .role "api" }}
- name: MEDIAFLOW_API_HOST
  value: "0.0.0.0"
- name: MEDIAFLOW_API_PORT
  value: "8081"
{{- else }}
- name: MEDIAFLOW_METRICS_HOST
  value: "0.0.0.0"
- name: MEDIAFLOW_METRICS_PORT
  value: {{ $v.metrics.port | quote }}
{{- end }}
{{- if eq .role "downloader" }}
- name: MEDIAFLOW_DOWNLOAD_CONCURRENCY
  value: {{ $v.roles.downloader.concurrency | quote }}
{{- end }}
# The pod's name: stable (<release>-<role>-N) for a StatefulSet, so each copy
# of a transactional stage keeps its transactional id across restarts.
- name: MEDIAFLOW_INSTANCE_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- range $name, $value := (index $v.roles .role).env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Secrets given whole as variables: the Kafka properties and the tenants' secrets. */}}
{{- define "mediaflow.envFrom" -}}
{{- $v := .root.Values -}}
{{- if and (has "kafka" .spec.needs) $v.kafka.existingSecret }}
- secretRef: {name: {{ $v.kafka.existingSecret | quote }}}
{{- end }}
{{- if has "tenants" .spec.needs }}
- secretRef: {name: {{ $v.tenants.existingSecret | quote }}}
{{- end }}
{{- end }}

{{- define "mediaflow.configChecksum" -}}
{{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
