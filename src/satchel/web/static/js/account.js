// The account page: the ShareX uploader of a key just created, downloaded as a file.
// The file is made here, in the browser, from the text on the page: the secret never goes
// back to the server and is never put in a URL.

function offerDownload(button) {
  const source = document.getElementById(button.dataset.source);
  if (!source) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const blob = new Blob([source.value], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = button.dataset.filename || "satchel.sxcu";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
}

const download = document.getElementById("sharex-download");
if (download) offerDownload(download);
