// Package v1alpha1 contains the API of the keboola.dev group: KeboolaProject,
// which verifies a Storage API token, and KeboolaWebhook, which manages one
// webhook in that project and publishes its signing secret.
//
// +kubebuilder:object:generate=true
// +groupName=keboola.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "keboola.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
