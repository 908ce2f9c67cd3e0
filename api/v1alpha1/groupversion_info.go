// Package v1alpha1 contains the API of the keboola.dev group: KeboolaProject,
// which verifies a Storage API token, and KeboolaWebhook, which manages one
// webhook in that project and publishes its signing secret.
//
// +kubebuilder:object:generate=true
// +groupName=keboola.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "keboola.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the kinds of this package. The package depends
// only on k8s.io/apimachinery, so that other projects can import the types
// without controller-runtime.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&KeboolaProject{}, &KeboolaProjectList{},
		&KeboolaWebhook{}, &KeboolaWebhookList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
