{{/* Names, labels and the parts the Deployment and the migration Job share. */}}

{{- define "tenantry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tenantry.fullname" -}}
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

{{- define "tenantry.instanceLabels" -}}
app.kubernetes.io/name: {{ include "tenantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The API's pods only: the Service and the PDB must not count the migration Job's pod. */}}
{{- define "tenantry.selectorLabels" -}}
{{ include "tenantry.instanceLabels" . }}
app.kubernetes.io/component: api
{{- end -}}

{{- define "tenantry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tenantry.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tenantry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tenantry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tenantry.secretName" -}}
{{- default (include "tenantry.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "tenantry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The ConfigMap and the Secret are hooks too (weight -10, before the migration Job at 0): a
pre-install Job runs before the release's ordinary resources exist. pre-rollback keeps them in
step with the Deployment a rollback restores.
*/}}
{{- define "tenantry.configHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade,pre-rollback
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* Secret keys: the required ones, then those a pod starts without (`optional: true`). */}}
{{- define "tenantry.requiredSecretKeys" -}}
{{- list "DATABASE_URL" "TENANTRY_DB_OWNER_PASSWORD" "TENANTRY_DB_APP_PASSWORD" "TENANTRY_DB_PLATFORM_PASSWORD" "TENANTRY_JWT_SECRET" | toJson -}}
{{- end -}}
{{- define "tenantry.optionalSecretKeys" -}}
{{- list "TENANTRY_S3_ACCESS_KEY_ID" "TENANTRY_S3_SECRET_ACCESS_KEY" "TENANTRY_METRICS_TOKEN" "TENANTRY_SMTP_PASSWORD" | toJson -}}
{{- end -}}

{{/* The container's settings: non-secret ones from the ConfigMap, secrets key by key. */}}
{{- define "tenantry.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "tenantry.fullname" . }}
env:
{{- range (include "tenantry.requiredSecretKeys" . | fromJsonArray) }}
  - name: {{ . }}
    valueFrom:
      secretKeyRef:
        name: {{ include "tenantry.secretName" $ }}
        key: {{ . }}
{{- end }}
{{- range (include "tenantry.optionalSecretKeys" . | fromJsonArray) }}
  - name: {{ . }}
    valueFrom:
      secretKeyRef:
        name: {{ include "tenantry.secretName" $ }}
        key: {{ . }}
        optional: true
{{- end }}
{{- end -}}

{{/* Writable paths of a read-only root filesystem: /tmp and the data dir (image: /var/lib/tenantry). */}}
{{- define "tenantry.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: data
    mountPath: /var/lib/tenantry
{{- end -}}

{{- define "tenantry.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
  - name: data
    emptyDir:
      sizeLimit: {{ .Values.dataSizeLimit }}
{{- end -}}

{{/* What every tenantry pod shares: security, scheduling, volumes. */}}
{{- define "tenantry.podSpecCommon" -}}
automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{ include "tenantry.volumes" . }}
{{- end -}}
