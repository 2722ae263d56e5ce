#!/usr/bin/env bash
# `make deploy`: the skaffold-free path. Builds the three images, makes them
# available to the cluster of the current kube context (kind: `kind load`,
# minikube: `minikube image load`, anything else: push them yourself), applies
# the dev PostgreSQL and Redis, and installs or upgrades the platform umbrella.
set -euo pipefail
cd "$(dirname "$0")/.."

namespace=${NAMESPACE:-platform}
base_image=${BASE_IMAGE:-python:3.11-slim-bookworm}
tag=${TAG:-dev-$(git rev-parse --short HEAD)}
context=$(kubectl config current-context)

for service in identity orders gateway; do
  DOCKER_BUILDKIT=1 docker build --build-arg "BASE_IMAGE=$base_image" \
    -f "services/$service/Dockerfile" -t "platform/$service:$tag" .
  case "$context" in
    kind-*) kind load docker-image --name "${context#kind-}" "platform/$service:$tag" ;;
    minikube) minikube image load "platform/$service:$tag" ;;
    *) echo "context $context: push platform/$service:$tag where the cluster can pull it" ;;
  esac
done

kubectl apply -f k8s/namespace.yaml
kubectl apply -f k8s/dev/
for backing in postgresql redis; do
  kubectl -n "$namespace" rollout status "deployment/$backing" --timeout=180s
done

helm upgrade --install platform charts/platform \
  --namespace "$namespace" \
  --values k8s/values-dev.yaml \
  --set "identity.image.tag=$tag,orders.image.tag=$tag,gateway.image.tag=$tag" \
  --wait --timeout 5m

echo "deployed; now: make port-forward, then curl http://localhost:8080/auth/readyz"
