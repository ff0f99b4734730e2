// Reveal buttons: POST to the reveal endpoint (audited server-side) and show the plaintext.
(function () {
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".js-reveal");
    if (!button) return;
    event.preventDefault();
    fetch(button.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        var target = document.getElementById(button.dataset.target);
        if (target) target.textContent = data.value;
        button.remove();
      })
      .catch(function () {
        button.textContent = "无权查看";
        button.disabled = true;
      });
  });
})();
