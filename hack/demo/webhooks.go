package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keboola/keboola-operator/internal/localenv"
	"github.com/keboola/keboola-operator/pkg/webhook"
)

// fireEvent is the event that the demo fires with the webhooks endpoint;
// the sample webhook subscribes to it.
const fireEvent = "storage.jobSucceeded"

func (d *demo) fire(ctx context.Context) (string, error) {
	deliveries, err := d.emulator.Fire(ctx, d.samples.ProjectID, fireEvent, nil)
	if err != nil {
		return "", err
	}
	last, err := d.checkDelivered(deliveries, fireEvent, "webhook")
	if err != nil {
		return "", err
	}

	id, err := deliveryID(last.Body)
	if err != nil {
		return "", err
	}
	line, ok := localenv.FindLine(d.env.LogPath("receiver"), `msg="Delivery verified"`, "dataId="+id+" ")
	if !ok {
		return "", fmt.Errorf("the receiver responded with 200 but logged no verified delivery with data.id %s", id)
	}
	return fmt.Sprintf("Emulator: delivered to webhook %s, the receiver responded with %d\nReceiver: %s", last.WebhookID, last.Status, line), nil
}

// deliveryID returns data.id of a delivery body.
func deliveryID(body string) (string, error) {
	var payload struct {
		Data struct {
			ID any `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &payload); err != nil {
		return "", fmt.Errorf("invalid delivery body: %w", err)
	}
	return fmt.Sprint(payload.Data.ID), nil
}

func (d *demo) sendForged(ctx context.Context) (string, error) {
	id, body := forgedDelivery(fireEvent)
	signature := webhook.Sign([]byte(wrongSecret), body)

	status, err := localenv.PostDelivery(ctx, d.receiverURL, body, signature)
	if err != nil {
		return "", err
	}
	if status != 401 {
		return "", fmt.Errorf("the receiver responded to a wrongly signed delivery with status %d, want 401", status)
	}
	line, _ := localenv.FindLine(d.env.LogPath("receiver"), `msg="Delivery rejected"`, id)
	return fmt.Sprintf("The receiver responded with %d\nReceiver: %s", status, line), nil
}
