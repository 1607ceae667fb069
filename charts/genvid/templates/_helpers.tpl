{{/*
Names, labels and small shared pieces (Bitnami style). Components: operator, api, worker,
migrations.
*/}}

{{/* The chart's name, overridable. */}}
{{- define "genvid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's base name: the release name when it already contains the chart's name
(`helm install genvid ...` gives `genvid-api`, `genvid-operator`, `genvid-worker`).
*/}}
{{- define "genvid.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (dict "ctx" $ "component" "api") -> genvid-api. */}}
{{- define "genvid.componentName" -}}
{{- printf "%s-%s" (include "genvid.fullname" .ctx | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "genvid.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; pass (dict "ctx" $ "component" "api"), component optional. */}}
{{- define "genvid.labels" -}}
helm.sh/chart: {{ include "genvid.chart" .ctx }}
{{ include "genvid.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: genvid
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The immutable subset, for selectors. */}}
{{- define "genvid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "genvid.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/*
metadata.annotations: commonAnnotations plus `extra`, at `indent` (default 2), preceded by a
newline; nothing at all when there are none. Use right after the labels:
{{- include "genvid.annotations" (dict "ctx" $ "extra" .Values.x.annotations) }}
*/}}
{{- define "genvid.annotations" -}}
{{- $all := merge (deepCopy (default (dict) .extra)) (deepCopy .ctx.Values.commonAnnotations) -}}
{{- with $all }}
{{- printf "annotations:\n%s" (toYaml . | indent 2) | nindent (int (default 2 $.indent)) }}
{{- end }}
{{- end -}}

{{/* The one image of all components: repository:tag, or repository@digest. */}}
{{- define "genvid.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A component's ServiceAccount name: (dict "ctx" $ "component" "api"). */}}
{{- define "genvid.serviceAccountName" -}}
{{- $sa := (index .ctx.Values .component).serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "genvid.componentName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap and Secret the worker Jobs load (GENVID_WORKER_CONFIG_NAME). */}}
{{- define "genvid.workerConfigName" -}}
{{- include "genvid.componentName" (dict "ctx" . "component" "worker") -}}
{{- end -}}

{{/* The Secret and key holding GENVID_JWT_SECRET. */}}
{{- define "genvid.jwtSecretName" -}}
{{- default (include "genvid.componentName" (dict "ctx" . "component" "api")) .Values.api.jwt.existingSecret -}}
{{- end -}}

{{- define "genvid.jwtSecretKey" -}}
{{- ternary .Values.api.jwt.existingSecretKey "jwt-secret" (ne .Values.api.jwt.existingSecret "") -}}
{{- end -}}

{{/* Pod-level settings shared by every pod of the chart. */}}
{{- define "genvid.podSpecCommon" -}}
# Service links would put <SERVICE>_PORT variables into the environment: a Service named
# genvid-metrics would set GENVID_METRICS_PORT=tcp://... and break the settings.
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling settings of a component: (dict "ctx" $ "component" "api"). */}}
{{- define "genvid.scheduling" -}}
{{- $c := index .ctx.Values .component -}}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The writable /tmp of a read-only root filesystem. */}}
{{- define "genvid.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end -}}

{{- define "genvid.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* The environment shared by the api, the operator and the migrations. */}}
{{- define "genvid.connectionEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
{{- end -}}

{{/* NATS_URL and the credentials of the api and the operator, from nats.existingSecret. */}}
{{- define "genvid.natsEnv" -}}
- name: NATS_URL
  value: {{ .Values.nats.url | quote }}
{{- $secret := .Values.nats.existingSecret }}
{{- range $name, $key := dict "GENVID_NATS_USER" .Values.nats.userKey "GENVID_NATS_PASSWORD" .Values.nats.passwordKey "GENVID_NATS_NKEY_SEED" .Values.nats.nkeySeedKey }}
{{- if and $secret $key }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- name: GENVID_NATS_TLS_CA_FILE
  value: /etc/genvid/nats-ca/ca.crt
{{- end }}
{{- end -}}

{{/* The private CA that verifies NATS' certificate (nats.tls.caSecret), for the api and the
operator. */}}
{{- define "genvid.natsCaVolume" -}}
- name: nats-ca
  secret:
    secretName: {{ .Values.nats.tls.caSecret }}
    items:
      - key: {{ .Values.nats.tls.caKey }}
        path: ca.crt
{{- end -}}

{{- define "genvid.natsCaVolumeMount" -}}
- name: nats-ca
  mountPath: /etc/genvid/nats-ca
  readOnly: true
{{- end -}}

{{/* Fail loudly when a Prometheus Operator kind is enabled but its CRD is not served. */}}
{{- define "genvid.requireMonitoringKind" -}}
{{- $apiVersion := printf "monitoring.coreos.com/v1/%s" .kind -}}
{{- if not (.ctx.Capabilities.APIVersions.Has $apiVersion) -}}
{{- fail (printf "%s=true, but the cluster does not serve %s: install the Prometheus Operator CRDs (monitoring.coreos.com) first, or disable it (with `helm template`, pass --api-versions %s)" .value $apiVersion $apiVersion) -}}
{{- end -}}
{{- end -}}
