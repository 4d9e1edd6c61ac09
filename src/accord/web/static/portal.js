// Accord portal: the few lines of JavaScript the pages need (no library, no build step).
// 1. Forms with data-confirm ask first.  2. The job page polls its status and opens the
// piece when it is ready.  3. Starting the player records a play (a usage event).
"use strict";

document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

function pollJob(card) {
  const status = document.getElementById("job-status");
  const error = document.getElementById("job-error");
  const bar = card.querySelector(".progress");
  const started = Date.now();
  const tick = async () => {
    let job;
    try {
      const response = await fetch(card.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(`status ${response.status}`);
      job = await response.json();
    } catch (err) {
      status.textContent = `lost touch with the server (${err.message}); retrying…`;
      window.setTimeout(tick, 2000);
      return;
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    status.dataset.status = job.status;
    if (job.status === "done") {
      status.textContent = "done: opening the piece…";
      bar.classList.add("done");
      window.location.assign(`/portal/studio/outputs/${job.output_id}`);
    } else if (job.status === "failed") {
      status.textContent = "failed";
      bar.classList.add("failed");
      error.textContent = job.error;
      error.hidden = false;
    } else {
      status.textContent = `${job.status}… ${seconds} s`;
      window.setTimeout(tick, 700);
    }
  };
  tick();
}

// Streaming the audio records nothing; each start of playback is one play, posted to the API with
// this page's CSRF token (the session cookie alone is refused) and a fresh play id (counted once).
function recordPlays(player) {
  player.addEventListener("play", () => {
    const playId = window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    fetch(player.dataset.playUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": player.dataset.csrf, "Idempotency-Key": `portal-${playId}` },
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.getElementById("job");
  if (job && job.dataset.statusUrl) pollJob(job);
  const player = document.getElementById("player");
  if (player && player.dataset.playUrl) recordPlays(player);
});
