"""The contract between lmaas's roles, which the operator, the workers, the `lmaas` command and
`lmaas run` all import, and which imports none of them (nor torch, kopf or a Kubernetes client):

- `spec`: the typed specs of the three kinds, mirroring the CRDs in crds/ field by field;
- `crds`: the CRDs themselves, the API's single source of truth, found and read;
- `validation`: a resource checked offline as the API server checks it (schema, defaults, CEL);
- `resource`: a custom resource as builders and workers see it (identity plus typed spec), and a
  resource file read and validated;
- `contract`: what a pod is given (env, paths) and what a worker answers (exit codes, progress
  lines, the termination log, the artifact's files);
- `clock`: the one form of a time in statuses and progress lines (RFC 3339, UTC);
- `card`: the model card of an artifact, typed, read and written the same way by every role;
- `errors`: the one configuration error, naming its field.
"""
