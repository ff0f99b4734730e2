// Hazard forms: show the major-hazard level only when the grade is "major".
(function () {
  "use strict";
  document.querySelectorAll("form").forEach(function (form) {
    var grade = form.querySelector("select[name$='grade']");
    var level = form.querySelector("[data-show-when-major]");
    if (!grade || !level) { return; }
    function sync() { level.classList.toggle("hz-hidden", grade.value !== "major"); }
    grade.addEventListener("change", sync);
    sync();
  });
})();
