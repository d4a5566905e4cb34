{{/*
Names, labels, the image, and the RBAC rules. The rules live here once and are rendered into a
ClusterRole (all namespaces) or into a Role in each watched namespace; docs/deploying.md says
why each rule exists.
*/}}

{{- define "modelplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name alone when it already holds the chart name. */}}
{{- define "modelplane.fullname" -}}
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

{{- define "modelplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelplane.labels" -}}
{{ include "modelplane.selectorLabels" . }}
app.kubernetes.io/part-of: modelplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "modelplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelplane.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelplane.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "modelplane.webhookServiceName" -}}
{{- printf "%s-webhook" (include "modelplane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret holding the webhook's serving certificate: tls.crt, tls.key and ca.crt. */}}
{{- define "modelplane.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "modelplane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the operator's container mounts that Secret (--webhook-cert-dir). */}}
{{- define "modelplane.webhookCertDir" -}}
/etc/modelplane/webhook-tls
{{- end -}}

{{- define "modelplane.metricsServiceName" -}}
{{- printf "%s-metrics" (include "modelplane.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Peering is on when asked for, and always with more than one replica. */}}
{{- define "modelplane.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{- define "modelplane.peeringName" -}}
{{- default (include "modelplane.fullname" .) .Values.peering.name -}}
{{- end -}}

{{/*
Rules on objects in the watched namespaces: a ClusterRole's rules when the operator watches all
namespaces, a Role's in each watched namespace otherwise.
*/}}
{{- define "modelplane.namespacedRules" -}}
# kopf watches the four kinds (list, watch) and keeps its progress annotations and finalizer on
# them (patch); handlers read one object or a model's versions (get, list); the ModelVersion
# handler puts its finalizer on the runs a version references (patch).
- apiGroups: [modelplane.io]
  resources: [experiments, runs, modelversions, modelstages]
  verbs: [get, list, watch, patch]
# Every kind's status is written by the operator, and only the status.
- apiGroups: [modelplane.io]
  resources: [experiments/status, runs/status, modelversions/status, modelstages/status]
  verbs: [patch]
# The serving Deployment's ownerReference sets blockOwnerDeletion, which clusters with the
# OwnerReferencesPermissionEnforcement admission plugin allow only to who may update the
# owner's finalizers.
- apiGroups: [modelplane.io]
  resources: [modelstages/finalizers]
  verbs: [update]
# The serving Deployments a ModelStage owns: watched, read, created, replaced with the desired
# template (update), marked with the last good template (patch), and deleted when the stage
# drops spec.serving.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update, patch, delete]
# A rollback puts back the pod template of the ReplicaSet that last completed a rollout.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
# kopf posts Events about handlers and transitions (core/v1 Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if and (include "modelplane.peering" .) .Values.watchNamespaces }}
# kopf peering in each watched namespace: watch the KopfPeering, keep its own entry alive.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  resourceNames: [{{ include "modelplane.peeringName" . | quote }}]
  verbs: [patch]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/* Rules that are cluster-wide whatever the operator watches. */}}
{{- define "modelplane.clusterRules" -}}
# kopf scans the API for the resources it serves and watches CRDs to notice new versions.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
# With namespace names (globs allowed), kopf lists and watches namespaces to find the matches.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- if .Values.webhook.enabled }}
# The approvals webhook asks whether the approver holds the verb `approve` on the ModelStage.
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
{{- end }}
{{- if and (include "modelplane.peering" .) (not .Values.watchNamespaces) }}
# kopf peering across all namespaces: watch the ClusterKopfPeering, keep its own entry alive.
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  resourceNames: [{{ include "modelplane.peeringName" . | quote }}]
  verbs: [patch]
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/*
One entry of a webhook configuration, as kopf builds it (kopf's admission.build_webhooks), with
its path under the webhook Service: {path, failurePolicy, clientConfig, rules, scope}.
*/}}
{{- define "modelplane.webhookEntry" -}}
{{- $clientConfig := deepCopy .clientConfig -}}
{{- $_ := set $clientConfig.service "path" .path -}}
sideEffects: None
failurePolicy: {{ .failurePolicy }}
matchPolicy: Equivalent
rules:
  {{- toYaml .rules | nindent 2 }}
{{- with .scope }}
{{ toYaml . }}
{{- end }}
clientConfig:
  {{- toYaml $clientConfig | nindent 2 }}
timeoutSeconds: 30
admissionReviewVersions: [v1, v1beta1]
{{- end -}}
